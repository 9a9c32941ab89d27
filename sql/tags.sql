--
-- tags: the price list's Tags value and the IncludeOverage flag
--
-- Tags are separated by ';' or ','; whitespace around a tag is ignored; the
-- whole tag must be IncludeOverage, in any ASCII case.
--
CREATE EXTENSION overage;

SELECT t AS tags, overage.tags_include_overage(t) AS include_overage
  FROM (VALUES
		('IncludeOverage'),					-- the tag alone: true
		('includeoverage'),					-- any case: true
		('INCLUDEOVERAGE'),					-- true
		('Telco;IncludeOverage'),			-- second tag: true
		('IncludeOverage,Telco'),			-- comma separator: true
		('  IncludeOverage  ;Telco'),		-- surrounding spaces: true
		(E'Telco ;\tIncludeOverage\n'),		-- tab and newline: true
		(';;IncludeOverage;;'),				-- empty tags around it: true
		('NoIncludeOverage'),				-- another tag: false
		('IncludeOverages'),				-- another tag: false
		('Include Overage'),				-- inner space: false
		('IncludeOverage-Telco'),			-- not separated: false
		('Telco'),							-- false
		(''),								-- empty value: false
		(' ; , '),							-- only separators: false
		('IncludeÖverage'),					-- multibyte lookalike: false
		('Ünïcödé;IncludeOverage;日本'),		-- multibyte neighbours: true
		-- the second spelling Partner Center's documents use (1.2)
		('IncludesOverage'),				-- true
		('Telco; includesoverage '),		-- any case, spaces: true
		('INCLUDESOVERAGE,Telco'),			-- true
		('IncludesOverages'),				-- another tag: false
		('IncludessOverage'),				-- another tag: false
		('Includes Overage'),				-- inner space: false
		('IncludesOverag')					-- prefix: false
	   ) AS v(t);

-- STRICT: NULL in, NULL out (the sku column turns that into false)
SELECT overage.tags_include_overage(NULL) IS NULL AS null_is_null;

-- a huge value: the tag after 1 MB of other tags, and 1 MB with no tag
SELECT overage.tags_include_overage(repeat('Telco;', 200000) || 'IncludeOverage') AS huge_with_tag,
	   overage.tags_include_overage(repeat('IncludeOverag', 100000)) AS huge_without_tag;

-- every code point from 1 to 255 (two-byte UTF-8 from 128 on),
-- around the tag and without it: never reads past the value, never matches
-- a tag that is not there
SELECT overage.tags_include_overage(string_agg(chr(i), '' ORDER BY i)) AS all_chars,
	   overage.tags_include_overage(string_agg(chr(i), '' ORDER BY i) || ';IncludeOverage') AS all_chars_then_tag
  FROM generate_series(1, 255) AS i;

-- the declared properties: immutable, strict, parallel safe
SELECT provolatile, proisstrict, proparallel
  FROM pg_proc WHERE oid = 'overage.tags_include_overage(text)'::regprocedure;

-- sku.includes_overage is derived from tags and cannot be written
INSERT INTO overage.sku (product_id, sku_id, title, tags) VALUES
	('CFQ7TTC0LF8Q', '0001', 'Microsoft 365 E5 with Calling Plan', 'IncludeOverage'),
	('CFQ7TTC0LF8R', '0001', 'Microsoft 365 E3 with Calling Plan', 'Telco; Calling'),
	('CFQ7TTC0LH18', '0001', 'Microsoft 365 Business Basic', NULL);
SELECT product_id, title, tags, includes_overage FROM overage.sku ORDER BY product_id;

INSERT INTO overage.sku (product_id, sku_id, title, tags, includes_overage)
	VALUES ('X', '1', 'forged', 'Telco', true);
UPDATE overage.sku SET includes_overage = true WHERE product_id = 'CFQ7TTC0LF8R';

-- the second spelling marks an overage SKU as well
INSERT INTO overage.sku (product_id, sku_id, title, tags) VALUES
	('CFQ7TTC0LF8S', '0001', 'Microsoft Teams Phone with Calling Plan', 'Telco;IncludesOverage');
SELECT product_id, tags, includes_overage FROM overage.sku WHERE product_id = 'CFQ7TTC0LF8S';
-- sku_properties: consumptionType "overage" (the property Partner Center's
-- SDK checks) for an overage SKU, JSON null otherwise; isOverageEnabled stays
SELECT product_id,
	   overage.sku_properties(product_id, sku_id) -> 'consumptionType' AS "consumptionType",
	   overage.sku_properties(product_id, sku_id) -> 'isOverageEnabled' AS "isOverageEnabled"
  FROM overage.sku ORDER BY product_id;

-- changing the tags changes the flag
UPDATE overage.sku SET tags = 'Telco,includeoverage' WHERE product_id = 'CFQ7TTC0LF8R';
SELECT product_id, includes_overage FROM overage.sku ORDER BY product_id;

DROP EXTENSION overage;
