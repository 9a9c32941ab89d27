--
-- service_price: the price of a minute by market and date.  A call is
-- priced at the service_price of its customer's market (customer.country,
-- in upper case) in effect at its start, else at the service's own price;
-- lines are per (holder subscription, customer, service, unit price,
-- currency), so a price change inside a month splits them.  Figures are
-- worked out by hand in the comments.
--
CREATE EXTENSION overage;
\set SHOW_CONTEXT never
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';

INSERT INTO overage.service (service_id, name, unit_price) VALUES
	('CALL', 'Domestic calling', 0.02);			-- USD, everywhere else
INSERT INTO overage.sku (product_id, sku_id, title, tags) VALUES
	('E5', '1', 'E5 with calling, 10 minutes', 'IncludeOverage');
INSERT INTO overage.sku_service VALUES ('E5', '1', 'CALL', 10);	-- 600 s a licence
INSERT INTO overage.partner VALUES ('P1', 'Contoso');
INSERT INTO overage.customer VALUES
	('C-US', 'Fourth Coffee', 'US'),
	('C-SE', 'Tailspin', 'se'),			-- lower case: compared in upper case
	('C-XX', 'Nowhere', NULL);			-- no market: always the service's price

-- US: 0.03 USD from Oct 1 to Oct 15, 0.04 USD from Oct 15 on.
-- SE: 0.25 SEK from Oct 10 to Oct 20 only.
INSERT INTO overage.service_price VALUES
	('CALL', 'US', 'USD', 0.03, '2026-10-01', '2026-10-15'),
	('CALL', 'US', 'USD', 0.04, '2026-10-15', NULL),
	('CALL', 'SE', 'SEK', 0.25, '2026-10-10', '2026-10-20');

-- periods of a (service, market) never overlap: 23P01, nothing written
INSERT INTO overage.service_price VALUES ('CALL', 'US', 'USD', 0.05, '2026-10-20', NULL);
INSERT INTO overage.service_price VALUES ('CALL', 'SE', 'SEK', 0.30, '2026-09-01', '2026-10-10 00:00:01');
UPDATE overage.service_price SET effective_to = '2026-10-16' WHERE market = 'US' AND unit_price = 0.03;
-- touching periods are fine; other markets are independent
INSERT INTO overage.service_price VALUES ('CALL', 'SE', 'SEK', 0.30, '2026-09-01', '2026-10-10');
-- the table's own checks: market and currency codes, an empty period
INSERT INTO overage.service_price VALUES ('CALL', 'usa', 'USD', 0.05, '2026-10-20', NULL);
INSERT INTO overage.service_price VALUES ('CALL', 'DE', 'euro', 0.05, '2026-10-20', NULL);
INSERT INTO overage.service_price VALUES ('CALL', 'DE', 'EUR', 0.05, '2026-10-20', '2026-10-20');
INSERT INTO overage.service_price VALUES ('CALL', 'DE', 'EUR', -1, '2026-10-20', NULL);
SELECT * FROM overage.service_price ORDER BY market, effective_from;

-- C-US has a 600 s pool from Sep 20, held by P1
SELECT overage.purchase('P1', 'C-US', 'E5', '1', 1, '2026-09-20') IS NOT NULL AS bought;

------------------------------------------------------------------------------
-- C-US (pool 600 s, P1 holds it)
--   Sep 25 10:00   900 s  included 600, overage 300 at 0.02 USD (no US price in September)
--   Oct  5 10:00   600 s  included 600 (the October pool)
--   Oct 14 23:59:59 120 s overage 120 at 0.03 USD (starts before Oct 15)
--   Oct 15 00:00   300 s  overage 300 at 0.04 USD (starts at the change)
--   Oct 31 12:00    60 s  overage  60 at 0.04 USD
-- P1's October lines: 0.03: 120 s = 2 min = 0.06; 0.04: 360 s = 6 min = 0.24
--
-- C-SE (no licence: everything unassigned)
--   Oct  9 23:59   600 s  at 0.30 SEK (Sep 1 - Oct 10)
--   Oct 10 00:00    90 s  at 0.25 SEK
--   Oct 19 12:00   600 s  at 0.25 SEK
--   Oct 20 00:00    60 s  at 0.02 USD (after the SE periods: the service's price)
-- lines: 0.30 SEK 600 s = 10 min = 3.00; 0.25 SEK 690 s = 11.5 min = 2.875 -> 2.88;
--        0.02 USD 60 s = 1 min = 0.02
--
-- C-XX: Oct 12 300 s at 0.02 USD = 5 min = 0.10, unassigned
------------------------------------------------------------------------------
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s) VALUES
	('C-US', 'CALL', 'u1', '2026-09-25 10:00Z', 900),
	('C-US', 'CALL', 'u1', '2026-10-05 10:00Z', 600),
	('C-US', 'CALL', 'u1', '2026-10-14 23:59:59Z', 120),
	('C-US', 'CALL', 'u1', '2026-10-15 00:00Z', 300),
	('C-US', 'CALL', 'u1', '2026-10-31 12:00Z', 60),
	('C-SE', 'CALL', 'u2', '2026-10-09 23:59Z', 600),
	('C-SE', 'CALL', 'u2', '2026-10-10 00:00Z', 90),
	('C-SE', 'CALL', 'u2', '2026-10-19 12:00Z', 600),
	('C-SE', 'CALL', 'u2', '2026-10-20 00:00Z', 60),
	('C-XX', 'CALL', 'u3', '2026-10-12 00:00Z', 300);

SELECT partner_id, customer_id, overage_seconds, quantity, unit_price, amount, currency
  FROM overage.preview_month('2026-09-01');
SELECT partner_id, customer_id, overage_seconds, quantity, unit_price, amount, currency
  FROM overage.preview_month('2026-10-01');
-- the pool does not depend on prices
SELECT * FROM overage.pool_status('C-US', 'CALL', '2026-11-01');

SELECT overage.close_month('2026-09-01'), overage.close_month('2026-10-01');
SELECT month, partner_id, customer_id, overage_seconds, unit_price, amount, currency
  FROM overage.charge ORDER BY month, customer_id, unit_price;
SELECT "CustomerId", "CustomerCountry", "Quantity", "UnitPrice", "BillingPreTaxTotal", "BillingCurrency"
  FROM overage.reconciliation('P1', '2026-10-01');
SELECT check_name, ok, detail FROM overage.verify() WHERE check_name = 'charge_lines';

-- verify() judges a closed line's price against today's prices: a price
-- changed after the close shows there (the stored line stays the bill)
UPDATE overage.service_price SET unit_price = 0.26 WHERE market = 'SE' AND unit_price = 0.25;
SELECT check_name, ok, detail FROM overage.verify() WHERE check_name = 'charge_lines';
UPDATE overage.service_price SET unit_price = 0.25 WHERE market = 'SE' AND unit_price = 0.26;
SELECT check_name, ok FROM overage.verify() WHERE check_name = 'charge_lines';

DROP EXTENSION overage;
