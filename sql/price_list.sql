--
-- price_list: the Partner Center price list as downloaded, loaded with
-- PostgreSQL's own COPY ... CSV HEADER into overage.price_list_import and
-- applied to overage.sku by apply_price_list(): all or nothing, every
-- problem reported (line, column, value) in one error, idempotent.
--
CREATE EXTENSION overage;
\set SHOW_CONTEXT never
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';

-- a fingerprint of the catalog, to show that a refused apply changed nothing
CREATE VIEW pg_temp.catalog AS
	SELECT count(*) AS skus, md5(string_agg(concat_ws('|', product_id, sku_id, title, tags), ',' ORDER BY product_id, sku_id)) AS fp
	  FROM overage.sku;
-- an error's SQLSTATE, message, number of DETAIL lines, first and last of them
CREATE FUNCTION pg_temp.err(stmt text, OUT state text, OUT message text,
							OUT detail_lines integer, OUT first_line text, OUT last_line text)
LANGUAGE plpgsql AS $$
DECLARE d text;
BEGIN
	EXECUTE stmt;
	state := '00000';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL;
	detail_lines := array_length(string_to_array(d, E'\n'), 1);
	first_line := split_part(d, E'\n', 1);
	last_line := (string_to_array(d, E'\n'))[detail_lines];
END $$;

-- The table's columns are the file's header, in its order ("ERP Price"
-- with its space), so COPY ... HEADER MATCH accepts the downloaded file.
SELECT string_agg(quote_ident(attname), ',' ORDER BY attnum) AS columns
  FROM pg_attribute WHERE attrelid = 'overage.price_list_import'::regclass AND attnum > 0;
\copy overage.price_list_import FROM 'test/data/price_list_sample.csv' (FORMAT csv, HEADER MATCH)
SELECT count(*) AS rows, count(DISTINCT ("ProductId", "SkuId")) AS skus,
	   count(DISTINCT "Market") AS markets, count(DISTINCT "EffectiveStartDate") AS start_dates
  FROM overage.price_list_import;

-- 273 rows, 12 SKUs (one per (ProductId, SkuId)): each inserted, title from
-- SkuTitle, tags from Tags as written (trimmed); includes_overage follows
-- the tags.  (The sample spells the tag IncludeOverage and IncludesOverage,
-- with spaces and in any case: both mark an overage SKU, 7 of the 12;
-- "Include Overage" and "NoIncludeOverage" are other tags.)
SELECT * FROM overage.apply_price_list();
SELECT product_id, sku_id, title, tags, includes_overage FROM overage.sku ORDER BY 1, 2;
SELECT * FROM pg_temp.catalog \gset before_
-- the same file again: nothing to do, nothing changed
SELECT * FROM overage.apply_price_list();
SELECT skus, fp = :'before_fp' AS unchanged FROM pg_temp.catalog;

-- sku_service is the operator's (the price list carries no minutes):
-- applying keeps it, and a purchase works on the applied SKU
INSERT INTO overage.service (service_id, name, unit_price) VALUES ('CALL', 'Domestic calling', 0.02);
INSERT INTO overage.sku_service VALUES ('CFQ7TTC0LF8Q', '0002', 'CALL', 120);
INSERT INTO overage.partner VALUES ('P1', 'Contoso');
INSERT INTO overage.customer VALUES ('C1', 'Tailspin', 'SE');
SELECT overage.purchase('P1', 'C1', 'CFQ7TTC0LF8Q', '0002', 5, '2026-10-01') IS NOT NULL AS bought;

-- next month's file renames one SKU and changes another's tags: two updates
UPDATE overage.price_list_import SET "SkuTitle" = 'Microsoft 365 E5 (no Teams) with Calling Plan'
 WHERE "ProductId" = 'CFQ7TTC0LF8Q' AND "SkuId" = '0002';
UPDATE overage.price_list_import SET "Tags" = 'Telco;IncludeOverage'
 WHERE "ProductId" = 'CFQ7TTC0LFLX' AND "SkuId" = '0001';
SELECT * FROM overage.apply_price_list();
SELECT product_id, sku_id, title, tags, includes_overage FROM overage.sku
 WHERE (product_id, sku_id) IN (('CFQ7TTC0LF8Q', '0002'), ('CFQ7TTC0LFLX', '0001')) ORDER BY 1, 2;
SELECT count(*) AS minutes_rows_kept FROM overage.sku_service;
-- a SKU missing from the file is kept (licences refer to it)
DELETE FROM overage.price_list_import WHERE "ProductId" = 'CFQ7TTC0LH18';
SELECT * FROM overage.apply_price_list();
SELECT count(*) AS skus FROM overage.sku;

------------------------------------------------------------------------------
-- A bad file: every problem at once, nothing applied
------------------------------------------------------------------------------
SELECT * FROM pg_temp.catalog \gset before_
TRUNCATE overage.price_list_import;
COPY overage.price_list_import FROM STDIN (FORMAT csv, HEADER);
ProductTitle,ProductId,SkuId,SkuTitle,Publisher,SkuDescription,UnitOfMeasure,TermDuration,BillingPlan,Market,Currency,UnitPrice,PricingTierRangeMin,PricingTierRangeMax,EffectiveStartDate,EffectiveEndDate,Tags,ERP Price,Segment
Good,PGOOD1,0001,A good SKU,Microsoft Corporation,,,P1Y,Monthly,US,USD,12.5,,,2026-09-01T00:00:00.0000000Z,9999-11-30T23:59:59.0000000Z,IncludeOverage,15,Commercial
Good,PGOOD1,0001,A good SKU,Microsoft Corporation,,,P1M,Monthly,SE,SEK,150,,,2/1/2026 0:00,11/30/9999 11:59:59 PM,IncludeOverage,180,Commercial
No product,,0001,No product id,Microsoft Corporation,,,P1Y,Monthly,US,USD,10,,,2026-09-01T00:00:00Z,9999-11-30T23:59:59Z,,12,Commercial
Comma price,PBAD2,0001,Comma price,Microsoft Corporation,,,P1Y,Monthly,DE,EUR,"12,50",,,2026-09-01T00:00:00Z,9999-11-30T23:59:59Z,,,Commercial
Bad market,PBAD3,0001,Bad market,Microsoft Corporation,,,P1Y,Monthly,USA,US$,10,,,2026-02-30T00:00:00Z,2026-01-01T00:00:00Z,,12x,Commercial
Backwards,PBAD4,0001,Backwards dates,Microsoft Corporation,,,P1Y,Monthly,US,USD,10,,,2026-10-01T00:00:00Z,2026-09-01T00:00:00Z,,,Commercial
Good,PGOOD1,0001,A good SKU renamed,Microsoft Corporation,,,P1Y,Annual,US,USD,150,,,2026-09-01T00:00:00Z,9999-11-30T23:59:59Z,Telco,180,Commercial
Id,P BAD5,00 1,,Microsoft Corporation,,,P1Y,Monthly,us,usd,-3,,,yesterday,,,,Commercial
\.
SELECT * FROM pg_temp.err('SELECT * FROM overage.apply_price_list()');
SELECT * FROM overage.apply_price_list();
SELECT skus, fp = :'before_fp' AS unchanged FROM pg_temp.catalog;

-- more than 100 problems: the first 100 in the DETAIL, then how many more
TRUNCATE overage.price_list_import;
INSERT INTO overage.price_list_import ("ProductId", "SkuId", "SkuTitle", "Market", "Currency",
		"UnitPrice", "EffectiveStartDate", "EffectiveEndDate")
SELECT 'P' || i, '0001', 'T' || i, 'US', 'USD', 'free', '2026-09-01', '9999-12-31'
  FROM generate_series(1, 150) i;
SELECT * FROM pg_temp.err('SELECT * FROM overage.apply_price_list()');
SELECT skus, fp = :'before_fp' AS unchanged FROM pg_temp.catalog;

-- an empty import applies nothing
TRUNCATE overage.price_list_import;
SELECT * FROM overage.apply_price_list();

------------------------------------------------------------------------------
-- The instants of the price list: ISO 8601 (the download's form) and the
-- US form spreadsheets show; UTC unless a zone is given; NULL otherwise
------------------------------------------------------------------------------
SELECT v, overage._price_list_instant(v)
  FROM unnest(ARRAY['2021-10-01T00:00:00.0000000Z', '2021-11-03T06:57:30.0682597Z',
					'9999-11-30T23:59:59.0000000Z', '2026-09-01', '2026-09-01 12:30:00+02:00',
					'2/1/2023 0:00', '11/30/9999 23:59', '11/30/9999 11:59:59 PM',
					'3/1/2018 12:00:00 AM', '2024-02-29T00:00:00Z',
					'2023-02-29T00:00:00Z', '13/1/2023 0:00', '2/1/2023 13:00 PM',
					'2026-09-01T24:00:00Z', 'tomorrow', '', NULL]) v;

------------------------------------------------------------------------------
-- Who may apply: the operator only
------------------------------------------------------------------------------
CREATE ROLE regress_overage_pl_ga;
SELECT overage.add_agent('regress_overage_pl_ga', 'P1', 'global_admin');
SET ROLE regress_overage_pl_ga;
SELECT * FROM overage.apply_price_list();
-- everyone reads the price list and the prices; not the import
SELECT count(*) > 0 AS reads_sku FROM overage.sku;
SELECT count(*) AS reads_service_price FROM overage.service_price;
SELECT count(*) AS reads_call_mapping FROM overage.call_mapping;
SELECT count(*) FROM overage.price_list_import;
RESET ROLE;
SELECT overage.remove_agent('regress_overage_pl_ga');
DROP ROLE regress_overage_pl_ga;

DROP VIEW pg_temp.catalog;
DROP EXTENSION overage;
