--
-- reconciliation: a partner's reconciliation file lines of a closed month,
-- one per charge line of its overage subscriptions, with the column names
-- of the file.
--
CREATE EXTENSION overage;
\set SHOW_CONTEXT never
-- show instants in UTC, the zone of billing months (results do not depend
-- on the session's zone; attribution.sql shows that)
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';

INSERT INTO overage.service (service_id, name, unit, unit_price, currency) VALUES
	('CALL', 'Domestic calling', 'Minute', 0.02, 'USD'),
	('INTL', 'International calling', 'Minute', 0.25, 'USD');
INSERT INTO overage.sku (product_id, sku_id, title, tags) VALUES
	('E5', '1', 'E5 with calling', 'IncludeOverage');
INSERT INTO overage.sku_service VALUES ('E5', '1', 'CALL', 1), ('E5', '1', 'INTL', 0);
INSERT INTO overage.partner VALUES ('P1', 'Partner one'), ('P2', 'Partner two'),
	('P3', 'Partner three');
INSERT INTO overage.customer VALUES ('C1', 'Contoso', 'US'), ('C2', 'Fabrikam', NULL);

-- C1 and C2 buy from P1 (P1 holds both services of both); P2 buys for C2
-- too but does not hold; C2's INTL is released to None on 10-15.
SELECT overage.purchase('P1', 'C1', 'E5', '1', 1, '2026-09-01 00:00Z') IS NOT NULL;
SELECT overage.purchase('P1', 'C2', 'E5', '1', 1, '2026-09-01 00:00Z') IS NOT NULL;
SELECT overage.purchase('P2', 'C2', 'E5', '1', 1, '2026-09-01 00:00Z') IS NOT NULL;
SELECT overage.release_overage('P1', 'C2', 'INTL', '2026-10-15 00:00Z');

-- C1 CALL: 100 s, pool 60: 40 s -> P1, 0.666667 min, 0.013333 -> 0.01
-- C1 INTL: 61 s, pool 0: 61 s -> P1, 1.016667 min, 0.254167 -> 0.25
-- C2 CALL: 150 s, pool 120 (two licences): 30 s -> P1, 0.5 min, 0.01
-- C2 INTL: 120 s on 10-10 -> P1 (2 min, 0.50); 60 s on 10-20 -> None
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s) VALUES
	('C1', 'CALL', 'a', '2026-10-05 10:00Z', 100),
	('C1', 'INTL', 'a', '2026-10-05 11:00Z', 61),
	('C2', 'CALL', 'b', '2026-10-06 10:00Z', 150),
	('C2', 'INTL', 'b', '2026-10-10 10:00Z', 120),
	('C2', 'INTL', 'b', '2026-10-20 10:00Z', 60);

-- an open month: OV007 with a hint to close it first
SELECT * FROM overage.reconciliation('P1', '2026-10-01');
\echo :LAST_ERROR_SQLSTATE
-- a month that never had usage is not closed either
SELECT * FROM overage.reconciliation('P1', '2025-01-01');
\echo :LAST_ERROR_SQLSTATE

SELECT overage.close_month('2026-10-01');	-- 5 lines (4 for P1, 1 unassigned)

-- P1's file: 4 lines; subscription ids are random, shown as flags.  As in
-- Partner Center's daily rated usage file, SubscriptionId is the Azure plan
-- and EntitlementId the subscription that held the overage (here P1's
-- overage subscription).  ChargeType is "new", as in Partner Center's
-- samples; Tier2MpnId is empty: P1 is a direct partner.
SELECT "PartnerId", "PartnerName", "CustomerId", "CustomerName", "CustomerCountry",
	   "Tier2MpnId",
	   "SubscriptionId" = (SELECT subscription_id FROM overage.subscription s
						   WHERE s.partner_id = 'P1' AND s.customer_id = r."CustomerId"
							 AND s.kind = 'azure_plan') AS "SubscriptionId is P1's plan",
	   "SubscriptionDescription",
	   "EntitlementId" = (SELECT subscription_id FROM overage.subscription s
						  WHERE s.partner_id = 'P1' AND s.customer_id = r."CustomerId"
							AND s.kind = 'overage') AS "EntitlementId is P1's overage",
	   "EntitlementDescription", "ChargeStartDate", "ChargeEndDate", "ChargeType",
	   "MeterType", "MeterCategory", "MeterId", "MeterName", "Unit", "UnitType",
	   "UnitPrice", "EffectiveUnitPrice", "Quantity",
	   "BillingPreTaxTotal", "BillingCurrency", "PricingPreTaxTotal", "PricingCurrency",
	   "PCToBCExchangeRate", "PartnerEarnedCreditPercentage", "CreditPercentage"
  FROM overage.reconciliation('P1', '2026-10-18') r;

-- every other column is empty (NULL) on every line
SELECT count(*) AS lines_with_unknown_values
  FROM overage.reconciliation('P1', '2026-10-01') r
 WHERE num_nonnulls("CustomerDomainName", "MpnId", "Tier2MpnId", "InvoiceNumber",
					"ProductId", "SkuId", "AvailabilityId", "SkuName", "ProductName",
					"PublisherName", "PublisherId", "UsageDate", "MeterSubCategory",
					"MeterRegion", "ResourceLocation", "ConsumedService",
					"ResourceGroup", "ResourceURI", "ServiceInfo1", "ServiceInfo2",
					"Tags", "AdditionalInfo", "PCToBCExchangeRateDate", "CreditType",
					"BenefitOrderId", "BenefitId", "BenefitType") > 0;

-- the columns, in file order: exactly the header of Partner Center's daily
-- rated usage reconciliation file (SPEC 1.2 lists it)
SELECT string_agg(n, ',' ORDER BY i) =
	   'PartnerId,PartnerName,CustomerId,CustomerName,CustomerDomainName,'
	   'CustomerCountry,MpnId,Tier2MpnId,InvoiceNumber,ProductId,SkuId,'
	   'AvailabilityId,SkuName,ProductName,PublisherName,PublisherId,'
	   'SubscriptionDescription,SubscriptionId,ChargeStartDate,ChargeEndDate,'
	   'UsageDate,MeterType,MeterCategory,MeterId,MeterSubCategory,MeterName,'
	   'MeterRegion,Unit,ResourceLocation,ConsumedService,ResourceGroup,'
	   'ResourceURI,ChargeType,UnitPrice,Quantity,UnitType,BillingPreTaxTotal,'
	   'BillingCurrency,PricingPreTaxTotal,PricingCurrency,ServiceInfo1,'
	   'ServiceInfo2,Tags,AdditionalInfo,EffectiveUnitPrice,PCToBCExchangeRate,'
	   'PCToBCExchangeRateDate,EntitlementId,EntitlementDescription,'
	   'PartnerEarnedCreditPercentage,CreditPercentage,CreditType,'
	   'BenefitOrderId,BenefitId,BenefitType' AS "columns are Partner Center's header"
  FROM pg_proc p, unnest(p.proargnames, p.proargmodes) WITH ORDINALITY AS u(n, mode, i)
 WHERE p.oid = 'overage.reconciliation(text, date)'::regprocedure AND u.mode = 't';

-- the header line of the file \copy writes (no rows selected: only the
-- header); the expected output is Partner Center's header, copied from SPEC
\copy (SELECT * FROM overage.reconciliation('P1', '2026-10-01') WHERE false) TO STDOUT WITH (FORMAT csv, HEADER)

-- as a file (the random subscription id left out)
\copy (SELECT "PartnerId", "CustomerId", "MeterName", "Quantity", "BillingPreTaxTotal", "BillingCurrency" FROM overage.reconciliation('P1', '2026-10-01')) TO STDOUT WITH (FORMAT csv, HEADER)

-- P2 held nothing, P3 never sold anything: empty files
SELECT count(*) AS p2_lines FROM overage.reconciliation('P2', '2026-10-01');
SELECT count(*) AS p3_lines FROM overage.reconciliation('P3', '2026-10-01');
-- the unassigned line is in no partner's file, but it is in the charges
SELECT partner_id, customer_id, service_id, overage_seconds, amount
  FROM overage.charge WHERE partner_id IS NULL;

-- unknown partner: 23503
SELECT * FROM overage.reconciliation('P9', '2026-10-01');
\echo :LAST_ERROR_SQLSTATE

DROP EXTENSION overage;
