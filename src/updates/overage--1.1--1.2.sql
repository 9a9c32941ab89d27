/* src/updates/overage--1.1--1.2.sql: what the 1.1 catalog needs before the
 * definitions of 1.2 (src/<concern>.sql below the DEFINITIONS line), which
 * the Makefile appends to this file to make overage--1.1--1.2.sql. */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION overage UPDATE TO '1.2'" to load this file. \quit

/*
 * 1.1 kept the 1.0 implementations of the API in schema overage_internal
 * behind SECURITY DEFINER wrappers.  1.2 has one function per API call
 * that authorizes, checks and writes (the definitions replace the
 * wrappers' bodies); the implementations go.
 */
DROP FUNCTION overage_internal.purchase(text, text, text, text, integer, timestamptz);
DROP FUNCTION overage_internal.set_quantity(uuid, integer, timestamptz);
DROP FUNCTION overage_internal.cancel(uuid, timestamptz);
DROP FUNCTION overage_internal.create_azure_subscription(text, text, timestamptz);
DROP FUNCTION overage_internal.get_overage(text);
DROP FUNCTION overage_internal.assign_overage(text, text, text, uuid, timestamptz);
DROP FUNCTION overage_internal.release_overage(text, text, text, timestamptz);
DROP FUNCTION overage_internal.pool_status(text, text, timestamptz);
DROP FUNCTION overage_internal.preview_month(date);
DROP FUNCTION overage_internal.close_month(date);
DROP FUNCTION overage_internal.reconciliation(text, date);
DROP SCHEMA overage_internal;


/*
 * Real inputs (src/inputs.sql): the price list staging table, prices by
 * market and date, the mapping of Graph call kinds to services, the Graph
 * ids already ingested.  New tables, copied from src/inputs.sql's tables
 * part.  _rate_month returns the price of each line now (a new return
 * type: dropped here, created by the definitions).
 */
DROP FUNCTION overage._rate_month(date);

-- The columns of Partner Center's new commerce license-based price list, in
-- the file's order, with its names ("ERP Price" has a space), all text, so
-- that COPY ... (FORMAT csv, HEADER) of a downloaded file works as it is.
CREATE TABLE @extschema@.price_list_import (
	"ProductTitle"			text,
	"ProductId"				text,
	"SkuId"					text,
	"SkuTitle"				text,
	"Publisher"				text,
	"SkuDescription"		text,
	"UnitOfMeasure"			text,
	"TermDuration"			text,
	"BillingPlan"			text,
	"Market"				text,
	"Currency"				text,
	"UnitPrice"				text,
	"PricingTierRangeMin"	text,
	"PricingTierRangeMax"	text,
	"EffectiveStartDate"	text,
	"EffectiveEndDate"		text,
	"Tags"					text,
	"ERP Price"				text,
	"Segment"				text
);

COMMENT ON TABLE @extschema@.price_list_import IS
'Staging for the Partner Center new commerce license-based price list: its 19 columns, its names, as text. TRUNCATE, then COPY overage.price_list_import FROM ''file.csv'' (FORMAT csv, HEADER) (or psql''s \copy), then SELECT * FROM overage.apply_price_list(). Line numbers in apply_price_list''s errors count the rows in the order COPY stored them, the header being line 1. Operator only.';

CREATE TABLE @extschema@.service_price (
	service_id		text NOT NULL REFERENCES @extschema@.service,
	market			text NOT NULL CHECK (market ~ '^[A-Z]{2}$'),
	currency		text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
	unit_price		numeric NOT NULL CHECK (unit_price >= 0),
	effective_from	timestamptz NOT NULL CHECK (isfinite(effective_from)),
	effective_to	timestamptz CHECK (isfinite(effective_to) AND effective_to > effective_from),
	PRIMARY KEY (service_id, market, effective_from)
);

COMMENT ON TABLE @extschema@.service_price IS
'The price of a minute of a service for customers of a market (overage.customer.country, compared in upper case) during [effective_from, effective_to). A call is priced at the price in effect at its start for its customer''s market, else at overage.service.unit_price/currency. The periods of a (service, market) never overlap (trigger service_price_no_overlap). Operator writes; everyone reads.';
COMMENT ON COLUMN @extschema@.service_price.market IS
'ISO 3166-1 alpha-2 code in upper case, as Partner Center''s Market column';
COMMENT ON COLUMN @extschema@.service_price.currency IS
'ISO 4217 code; the charge line''s currency';
COMMENT ON COLUMN @extschema@.service_price.effective_to IS
'End of the period, exclusive; NULL: open';

CREATE TABLE @extschema@.call_mapping (
	call_type			text NOT NULL,
	destination_context	text,
	service_id			text NOT NULL REFERENCES @extschema@.service,
	CONSTRAINT call_mapping_kind UNIQUE NULLS NOT DISTINCT (call_type, destination_context)
);

COMMENT ON TABLE @extschema@.call_mapping IS
'Which service a Microsoft Graph pstnCallLogRow is metered on, by its callType and destinationContext (NULL: the row has none, as inbound calls). A row of a kind not listed here fails ingest_pstn_calls. Operator writes; everyone reads.';

CREATE TABLE @extschema@.pstn_call (
	call_id				uuid PRIMARY KEY,
	usage_id			bigint NOT NULL,
	customer_id			text NOT NULL,
	call_type			text NOT NULL,
	destination_context	text,
	service_id			text NOT NULL,
	user_id				text NOT NULL,
	started_at			timestamptz NOT NULL,
	duration_s			integer NOT NULL,
	loaded_at			timestamptz NOT NULL DEFAULT pg_catalog.now()
);

COMMENT ON TABLE @extschema@.pstn_call IS
'Graph call records ingested by ingest_pstn_calls, one per pstnCallLogRow id, as received (kind, service, user, start, duration): the id is the identity of a call, so a row delivered again (also by a concurrent load) is a duplicate and writes nothing. usage_id is the call in overage.usage. Operator only.';
COMMENT ON COLUMN @extschema@.pstn_call.call_id IS
'pstnCallLogRow.id (a GUID)';
COMMENT ON COLUMN @extschema@.pstn_call.usage_id IS
'overage.usage.usage_id of the call (no foreign key: usage has no key on it; deleting the call from usage does not forget its id)';

SELECT pg_catalog.pg_extension_config_dump('@extschema@.price_list_import', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.service_price', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.call_mapping', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.pstn_call', '');

