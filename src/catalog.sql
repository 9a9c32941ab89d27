/*-------------------------------------------------------------------------
 *
 * src/catalog.sql
 *	  The price list: services and their price, SKUs and their Tags (which
 *	  say whether a SKU carries overage, src/tags.c), the minutes each
 *	  licence of a SKU adds to a customer's pool.
 *
 *-------------------------------------------------------------------------
 */

-- Declared here, not below: the generated column sku.includes_overage
-- depends on it.  The parser is C (src/tags.c).
CREATE FUNCTION @extschema@.tags_include_overage(tags text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'tags_include_overage'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE TABLE @extschema@.service (
	service_id	text PRIMARY KEY,
	name		text NOT NULL,
	unit		text NOT NULL DEFAULT 'Minute',
	unit_price	numeric NOT NULL CHECK (unit_price >= 0),
	currency	text NOT NULL DEFAULT 'USD'
);

COMMENT ON TABLE @extschema@.service IS
'Services with a calling allocation (for example a domestic calling plan) and their pay-as-you-go price';
COMMENT ON COLUMN @extschema@.service.unit_price IS
'Price of one unit (minute) of overage, in currency';

CREATE TABLE @extschema@.sku (
	product_id	text NOT NULL,
	sku_id		text NOT NULL,
	title		text NOT NULL,
	tags		text,
	includes_overage boolean NOT NULL
		GENERATED ALWAYS AS (coalesce(@extschema@.tags_include_overage(tags), false)) STORED,
	PRIMARY KEY (product_id, sku_id)
);

COMMENT ON TABLE @extschema@.sku IS
'Catalog SKUs (price list rows)';
COMMENT ON COLUMN @extschema@.sku.tags IS
'The price list''s Tags column, tags separated by ";" or ","';
COMMENT ON COLUMN @extschema@.sku.includes_overage IS
'Derived from tags (tag IncludeOverage or IncludesOverage); cannot be written';

CREATE TABLE @extschema@.sku_service (
	product_id	text NOT NULL,
	sku_id		text NOT NULL,
	service_id	text NOT NULL REFERENCES @extschema@.service,
	minutes_per_license integer NOT NULL CHECK (minutes_per_license >= 0),
	PRIMARY KEY (product_id, sku_id, service_id),
	FOREIGN KEY (product_id, sku_id) REFERENCES @extschema@.sku ON DELETE CASCADE
);

COMMENT ON TABLE @extschema@.sku_service IS
'Services a SKU includes, with the monthly minutes each licence adds to the customer''s pool';
COMMENT ON COLUMN @extschema@.sku_service.minutes_per_license IS
'Included minutes per licence per calendar month; 0 means pure pay-as-you-go';

SELECT pg_catalog.pg_extension_config_dump('@extschema@.service', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.sku', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.sku_service', '');

-- DEFINITIONS: re-runnable, replayed by every upgrade script (see Makefile)

COMMENT ON FUNCTION @extschema@.tags_include_overage(text) IS
'True if a price list Tags value (tags separated by ";" or ",") holds the tag IncludeOverage or IncludesOverage (both spellings Partner Center uses), compared case-insensitively';

CREATE OR REPLACE FUNCTION @extschema@.sku_properties(product_id text, sku_id text)
RETURNS jsonb
LANGUAGE plpgsql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	result jsonb;
BEGIN
	SELECT jsonb_build_object(
			'productId', s.product_id,
			'skuId', s.sku_id,
			'title', s.title,
			'isOverageEnabled', s.includes_overage,
			-- the property Partner Center's SDK checks
			'consumptionType', CASE WHEN s.includes_overage THEN 'overage' END,
			'services', coalesce((
				SELECT jsonb_agg(jsonb_build_object(
							'serviceId', ss.service_id,
							'minutesPerLicense', ss.minutes_per_license)
						ORDER BY ss.service_id)
				  FROM @extschema@.sku_service ss
				 WHERE ss.product_id = s.product_id
				   AND ss.sku_id = s.sku_id), '[]'::jsonb))
	  INTO result
	  FROM @extschema@.sku s
	 WHERE s.product_id = sku_properties.product_id
	   AND s.sku_id = sku_properties.sku_id;

	IF result IS NULL THEN
		RAISE EXCEPTION 'SKU "%" of product "%" does not exist',
			sku_properties.sku_id, sku_properties.product_id
			USING ERRCODE = 'foreign_key_violation';
	END IF;
	RETURN result;
END
$$;

COMMENT ON FUNCTION @extschema@.sku_properties(text, text) IS
'Catalog SKU properties as JSON: productId, skuId, title, isOverageEnabled, consumptionType ("overage" for an overage SKU, null otherwise), services[{serviceId, minutesPerLicense}]';
