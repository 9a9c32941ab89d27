/*-------------------------------------------------------------------------
 *
 * src/inputs.sql
 *	  Real inputs: the Partner Center price list as downloaded (a staging
 *	  table COPY loads as it is, applied to overage.sku all or nothing),
 *	  the price of a minute by market and date (service_price, read by the
 *	  rating in src/rating.c), and Microsoft Graph call records
 *	  (getPstnCalls' pstnCallLogRow), ingested once per Graph id into
 *	  overage.usage through call_mapping.
 *
 *-------------------------------------------------------------------------
 */

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
	loaded_at			timestamptz NOT NULL DEFAULT pg_catalog.now()
);

COMMENT ON TABLE @extschema@.pstn_call IS
'The register of Graph call records ingested by ingest_pstn_calls, one per pstnCallLogRow id: the id is the identity of a call, so a row delivered again (also by a concurrent load) is a duplicate and writes nothing. The call itself (service, user, start, duration) is stored once, in overage.usage, as usage_id; this table keeps what usage does not: the Graph id and kind (callType, destinationContext). Operator only.';
COMMENT ON COLUMN @extschema@.pstn_call.call_id IS
'pstnCallLogRow.id (a GUID)';
COMMENT ON COLUMN @extschema@.pstn_call.usage_id IS
'overage.usage.usage_id of the call (no foreign key: usage has no key on it; deleting the call from usage does not forget its id)';

SELECT pg_catalog.pg_extension_config_dump('@extschema@.price_list_import', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.service_price', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.call_mapping', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.pstn_call', '');

-- DEFINITIONS: re-runnable, replayed by every upgrade script (see Makefile)

------------------------------------------------------------------------------
-- Prices by market and date
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION @extschema@._service_price_no_overlap()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	other	@extschema@.service_price;
BEGIN
	-- one writer of a service's prices at a time, so two overlapping
	-- periods written at once cannot both pass.  Not on a Citus cluster,
	-- where this trigger fires on every node's placement and the lock
	-- would need every node from each of them: a distributed deadlock
	-- (README "Scaling out", limitations)
	IF NOT @extschema@._distributed() THEN
		PERFORM 1 FROM @extschema@.service s
		  WHERE s.service_id = NEW.service_id FOR NO KEY UPDATE;
	END IF;

	SELECT * INTO other FROM @extschema@.service_price p
	 WHERE p.service_id = NEW.service_id AND p.market = NEW.market
	   AND (TG_OP = 'INSERT'
			OR (p.service_id, p.market, p.effective_from)
			   IS DISTINCT FROM (OLD.service_id, OLD.market, OLD.effective_from))
	   AND p.effective_from < coalesce(NEW.effective_to, 'infinity')
	   AND coalesce(p.effective_to, 'infinity') > NEW.effective_from
	 ORDER BY p.effective_from
	 LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'price periods of service "%" in market "%" overlap',
			NEW.service_id, NEW.market
			USING ERRCODE = 'exclusion_violation',
				  DETAIL = format('The new period [%s, %s) overlaps [%s, %s) at %s %s.',
								  NEW.effective_from, coalesce(NEW.effective_to::text, 'open'),
								  other.effective_from, coalesce(other.effective_to::text, 'open'),
								  other.unit_price, other.currency),
				  HINT = 'End the current period (effective_to) where the new one starts.';
	END IF;
	RETURN NEW;
END
$$;

COMMENT ON FUNCTION @extschema@._service_price_no_overlap() IS
'Internal: BEFORE INSERT OR UPDATE trigger on overage.service_price; the periods of a (service, market) do not overlap (23P01)';

CREATE OR REPLACE TRIGGER service_price_no_overlap
	BEFORE INSERT OR UPDATE ON @extschema@.service_price
	FOR EACH ROW EXECUTE FUNCTION @extschema@._service_price_no_overlap();

------------------------------------------------------------------------------
-- The price list
------------------------------------------------------------------------------

/*
 * An instant of the price list: ISO 8601 (2021-10-01T00:00:00.0000000Z, the
 * API's and the CSV download's form; no zone = UTC) or the US form
 * spreadsheets show (2/1/2023 0:00, 11/30/9999 11:59:59 PM), UTC.  NULL when
 * the text is neither or names no real instant; never raises.
 */
CREATE OR REPLACE FUNCTION @extschema@._price_list_instant(v text)
RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	m		text[];
	y		integer;
	mo		integer;
	d		integer;
	h		integer;
	mi		integer;
	s		integer;
	frac	text;
	zone	text;
BEGIN
	m := regexp_match(v, '^\s*(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?\s*$');
	IF m IS NOT NULL THEN
		y := m[1]::integer; mo := m[2]::integer; d := m[3]::integer;
		h := coalesce(m[4], '0')::integer; mi := coalesce(m[5], '0')::integer;
		s := coalesce(m[6], '0')::integer; frac := coalesce(m[7], '');
		zone := coalesce(nullif(m[8], 'Z'), '+00');
	ELSE
		m := regexp_match(v, '^\s*(\d{1,2})/(\d{1,2})/(\d{4})(?:\s+(\d{1,2}):(\d{2})(?::(\d{2}))?(?:\s*([AaPp][Mm]))?)?\s*$');
		IF m IS NULL THEN
			RETURN NULL;
		END IF;
		mo := m[1]::integer; d := m[2]::integer; y := m[3]::integer;
		h := coalesce(m[4], '0')::integer; mi := coalesce(m[5], '0')::integer;
		s := coalesce(m[6], '0')::integer; frac := ''; zone := '+00';
		IF m[7] IS NOT NULL THEN
			IF h < 1 OR h > 12 THEN
				RETURN NULL;
			END IF;
			h := h % 12 + CASE WHEN upper(m[7]) = 'PM' THEN 12 ELSE 0 END;
		END IF;
	END IF;
	IF y < 1 OR mo < 1 OR mo > 12 OR d < 1 OR h > 23 OR mi > 59 OR s > 59
	   OR d > extract(day FROM make_date(y, mo, 1) + interval '1 month - 1 day') THEN
		RETURN NULL;
	END IF;
	RETURN format('%s-%s-%s %s:%s:%s%s%s', lpad(y::text, 4, '0'), mo, d, h, mi, s,
				  frac, zone)::timestamptz;
END
$$;

COMMENT ON FUNCTION @extschema@._price_list_instant(text) IS
'Internal: an EffectiveStartDate/EffectiveEndDate of the price list as an instant (ISO 8601, or M/D/YYYY H:MM[:SS] [AM|PM]; UTC unless a zone is given); NULL if it is not one';

CREATE OR REPLACE FUNCTION @extschema@.apply_price_list()
RETURNS TABLE(action text, product_id text, sku_id text)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	n_problems	bigint;
	detail		text;
BEGIN
	PERFORM @extschema@._authorize('operate', NULL);

	-- the file stays as it is while it is judged and applied, and one
	-- apply runs at a time (purchases only read sku: they do not wait)
	LOCK TABLE @extschema@.price_list_import IN SHARE MODE;
	LOCK TABLE @extschema@.sku IN SHARE ROW EXCLUSIVE MODE;

	/*
	 * Every problem of every row at once: (line, column, value, why).  A
	 * row is the line of the file its physical position says (the header
	 * is line 1), as COPY into the emptied table stores it.
	 */
	WITH r AS (
		SELECT row_number() OVER (ORDER BY i.ctid) + 1 AS line, i.*
		  FROM @extschema@.price_list_import i
	), firsts AS (
		SELECT DISTINCT ON (btrim(r."ProductId"), btrim(r."SkuId"))
			   btrim(r."ProductId") AS p, btrim(r."SkuId") AS k, r.line,
			   btrim(r."SkuTitle") AS title, nullif(btrim(r."Tags"), '') AS tags
		  FROM r
		 ORDER BY btrim(r."ProductId"), btrim(r."SkuId"), r.line
	), problems AS (
		SELECT r.line, x.n, x.col, x.val, x.why
		  FROM r, LATERAL (VALUES
			(1, 'ProductId', r."ProductId",
			 CASE WHEN coalesce(btrim(r."ProductId"), '') = '' THEN 'is empty'
				  WHEN btrim(r."ProductId") !~ '^[A-Za-z0-9]{1,40}$' THEN 'is not a product id (letters and digits)' END),
			(2, 'SkuId', r."SkuId",
			 CASE WHEN coalesce(btrim(r."SkuId"), '') = '' THEN 'is empty'
				  WHEN btrim(r."SkuId") !~ '^[A-Za-z0-9]{1,40}$' THEN 'is not a SKU id (letters and digits)' END),
			(3, 'SkuTitle', r."SkuTitle",
			 CASE WHEN coalesce(btrim(r."SkuTitle"), '') = '' THEN 'is empty' END),
			(4, 'Market', r."Market",
			 CASE WHEN coalesce(btrim(r."Market"), '') !~ '^[A-Za-z]{2}$' THEN 'is not a two-letter market code' END),
			(5, 'Currency', r."Currency",
			 CASE WHEN coalesce(btrim(r."Currency"), '') !~ '^[A-Za-z]{3}$' THEN 'is not a three-letter currency code' END),
			(6, 'UnitPrice', r."UnitPrice",
			 CASE WHEN coalesce(btrim(r."UnitPrice"), '') !~ '^[0-9]{1,15}(\.[0-9]{1,15})?$' THEN 'is not a price (digits, a decimal point)' END),
			(7, 'EffectiveStartDate', r."EffectiveStartDate",
			 CASE WHEN @extschema@._price_list_instant(r."EffectiveStartDate") IS NULL THEN 'is not a date' END),
			(8, 'EffectiveEndDate', r."EffectiveEndDate",
			 CASE WHEN @extschema@._price_list_instant(r."EffectiveEndDate") IS NULL THEN 'is not a date'
				  WHEN @extschema@._price_list_instant(r."EffectiveEndDate")
					   <= @extschema@._price_list_instant(r."EffectiveStartDate") THEN 'is not after EffectiveStartDate' END),
			(9, 'ERP Price', r."ERP Price",
			 CASE WHEN coalesce(btrim(r."ERP Price"), '') !~ '^([0-9]{1,15}(\.[0-9]{1,15})?)?$' THEN 'is not a price (digits, a decimal point)' END)
			) AS x(n, col, val, why)
		 WHERE x.why IS NOT NULL
		UNION ALL
		-- a SKU has one title and one set of tags: the other rows of the
		-- same (ProductId, SkuId) must agree with its first row
		SELECT r.line, x.n, x.col, x.val,
			   format('differs from line %s of the same ProductId and SkuId ("%s")', f.line,
					  coalesce(x.first, ''))
		  FROM r
		  JOIN firsts f ON f.p = btrim(r."ProductId") AND f.k = btrim(r."SkuId") AND f.line < r.line,
			   LATERAL (VALUES
				(3, 'SkuTitle', r."SkuTitle", btrim(r."SkuTitle"), f.title),
				(10, 'Tags', r."Tags", nullif(btrim(r."Tags"), ''), f.tags)
			   ) AS x(n, col, val, mine, first)
		 WHERE x.mine IS DISTINCT FROM x.first
	)
	SELECT count(*),
		   string_agg(format('line %s, column "%s", value "%s": %s', p.line, p.col,
							 coalesce(left(p.val, 60) || CASE WHEN length(p.val) > 60 THEN '...' ELSE '' END, ''),
							 p.why), E'\n' ORDER BY p.line, p.n)
			 FILTER (WHERE p.rank <= 100)
	  INTO n_problems, detail
	  FROM (SELECT q.*, row_number() OVER (ORDER BY q.line, q.n) AS rank FROM problems q) p;

	IF n_problems > 0 THEN
		RAISE EXCEPTION 'the price list has % problem%', n_problems,
			CASE WHEN n_problems = 1 THEN '' ELSE 's' END
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = detail || CASE WHEN n_problems > 100
										  THEN format(E'\n(and %s more)', n_problems - 100) ELSE '' END,
				  HINT = 'Nothing was applied. Correct the file, TRUNCATE overage.price_list_import, load it again and apply.';
	END IF;

	-- one SKU per (ProductId, SkuId): its title and tags (all its rows agree)
	RETURN QUERY
	WITH file AS (
		SELECT DISTINCT ON (btrim(i."ProductId"), btrim(i."SkuId"))
			   btrim(i."ProductId") AS product_id, btrim(i."SkuId") AS sku_id,
			   btrim(i."SkuTitle") AS title, nullif(btrim(i."Tags"), '') AS tags
		  FROM @extschema@.price_list_import i
		 ORDER BY btrim(i."ProductId"), btrim(i."SkuId")
	), changed AS (
		SELECT r.product_id, r.sku_id, r.title, r.tags,
			   CASE WHEN s.product_id IS NULL THEN 'insert' ELSE 'update' END AS action
		  FROM file r
		  LEFT JOIN @extschema@.sku s
			ON s.product_id = r.product_id AND s.sku_id = r.sku_id
		 WHERE s.product_id IS NULL
			OR (s.title, s.tags) IS DISTINCT FROM (r.title, r.tags)
	), written AS (
		INSERT INTO @extschema@.sku AS s (product_id, sku_id, title, tags)
		SELECT c.product_id, c.sku_id, c.title, c.tags FROM changed c
		ON CONFLICT (product_id, sku_id)
		DO UPDATE SET title = EXCLUDED.title, tags = EXCLUDED.tags
		RETURNING s.product_id, s.sku_id
	)
	SELECT c.action, c.product_id, c.sku_id
	  FROM changed c JOIN written w USING (product_id, sku_id)
	 ORDER BY c.product_id, c.sku_id;
END
$$;

COMMENT ON FUNCTION @extschema@.apply_price_list() IS
'Applies overage.price_list_import to overage.sku: one SKU per (ProductId, SkuId), title from SkuTitle, tags from Tags (so includes_overage follows). Validates every row first; problems (line, column, value) go all at once, the first 100 in the DETAIL, as 22023, and nothing is applied. Returns the SKUs inserted or updated (action insert | update); applying the same file again returns nothing and changes nothing. Never deletes a SKU; sku_service (minutes per licence) stays the operator''s. Operator only';

------------------------------------------------------------------------------
-- Microsoft Graph call records
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION @extschema@._pstn_rows(calls jsonb)
RETURNS TABLE(call_id uuid, user_id text, started_at timestamptz, duration_s integer,
			  call_type text, destination_context text, ord bigint, service_id text,
			  copies integer)
AS 'MODULE_PATHNAME', 'overage_pstn_rows'
LANGUAGE C STABLE STRICT
ROWS 10000
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION @extschema@._pstn_rows(jsonb) IS
'Internal: the rows of a getPstnCalls response ({"value": [...]} or an array), read in one pass (src/pstn.c), checked, typed and mapped to their service through call_mapping, in Graph id order, each id once: its first row in the response (ord, from 1) and copies, the number of rows carrying the id; refuses a document of neither shape or the first bad row (22023, naming its position, its id and the property; a row that is not an object first), then the first unmapped kind (23503), as ingest_pstn_calls documents';

CREATE OR REPLACE FUNCTION @extschema@._pstn_store(customer_id text, calls jsonb, retry boolean,
	OUT received bigint, OUT inserted bigint)
AS 'MODULE_PATHNAME', 'overage_pstn_store'
LANGUAGE C VOLATILE STRICT
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION @extschema@._pstn_store(text, jsonb, boolean) IS
'Internal, for ingest_pstn_calls (which checks the caller and the customer first): reads the response as _pstn_rows does (refusing it the same way) and stores each id not stored yet into pstn_call in Graph id order and its call into usage in usage_rating''s order, both with one usage_id, in one INSERT each (src/pstn.c). retry false: a plain insert, failing (23505, pstn_call_pkey) at an id stored already or by a concurrent load; retry true: the ids stored already left out and those stored meanwhile skipped (ON CONFLICT DO NOTHING). Returns the response''s rows and the calls inserted';

CREATE OR REPLACE FUNCTION @extschema@.ingest_pstn_calls(customer_id text, calls jsonb)
RETURNS TABLE(inserted bigint, duplicates bigint)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
DECLARE
	total	bigint;
	n		bigint;
	pkey	text;
	batch	jsonb;
	cids	uuid[];
	known	uuid[];
	uids	bigint[];
	ids		bigint[];
BEGIN
	PERFORM @extschema@._require('customer_id', ingest_pstn_calls.customer_id);
	PERFORM @extschema@._authorize('operate', NULL);
	PERFORM @extschema@._require('calls', ingest_pstn_calls.calls);
	PERFORM @extschema@._require_exists('customer', ingest_pstn_calls.customer_id);

	IF @extschema@._distributed() THEN
		/*
		 * On a Citus cluster (README "Scaling out"), in steps Citus plans
		 * (its refusals: README limitations 10b and 23), all of the
		 * customer's rows on its shard, instead of _pstn_store below (its
		 * inserts in C are not tried on a cluster).  The
		 * response is read once; the ids it has that the customer's shard
		 * of pstn_call holds already are looked up there; the others get
		 * their usage_id here and go into pstn_call with ON CONFLICT DO
		 * NOTHING (a concurrent load of the same ids: its rows win, ours
		 * are duplicates); the calls whose id went in go into usage.  The
		 * key is (customer_id, call_id) there: an id loaded for another
		 * customer is not a duplicate.
		 */
		SELECT coalesce(sum(r.copies), 0),
			   coalesce(pg_catalog.jsonb_agg(pg_catalog.to_jsonb(r) ORDER BY r.call_id), '[]'),
			   coalesce(pg_catalog.array_agg(r.call_id), '{}')
		  INTO total, batch, cids
		  FROM @extschema@._pstn_rows(calls) r;
		SELECT pg_catalog.array_agg(p.call_id) INTO known
		  FROM @extschema@.pstn_call p
		 WHERE p.customer_id = ingest_pstn_calls.customer_id AND p.call_id = ANY (cids);
		SELECT coalesce(pg_catalog.jsonb_agg(x || pg_catalog.jsonb_build_object('usage_id',
					pg_catalog.nextval('@extschema@.usage_usage_id_seq'::regclass)) ORDER BY o), '[]')
		  INTO batch
		  FROM pg_catalog.jsonb_array_elements(batch) WITH ORDINALITY AS e(x, o)
		 WHERE NOT (x->>'call_id')::uuid = ANY (coalesce(known, '{}'));
		-- the inserts one-shot (EXECUTE): Citus plans no INSERT ... SELECT
		-- with parameters, which this function's generic plans have
		EXECUTE 'INSERT INTO @extschema@.pstn_call (call_id, usage_id, customer_id, call_type,'
				'										   destination_context)'
				' SELECT f.call_id, f.usage_id, $1, f.call_type, f.destination_context'
				'   FROM pg_catalog.jsonb_to_recordset($2)'
				'	 AS f(call_id uuid, usage_id bigint, call_type text, destination_context text)'
				' ON CONFLICT ON CONSTRAINT pstn_call_pkey DO NOTHING'
			USING ingest_pstn_calls.customer_id, batch;
		-- the rows that went in: those whose usage_id pstn_call now holds
		SELECT coalesce(pg_catalog.array_agg((x->>'usage_id')::bigint), '{}') INTO uids
		  FROM pg_catalog.jsonb_array_elements(batch) x;
		SELECT pg_catalog.array_agg(p.usage_id) INTO ids
		  FROM @extschema@.pstn_call p
		 WHERE p.customer_id = ingest_pstn_calls.customer_id AND p.usage_id = ANY (uids);
		EXECUTE 'INSERT INTO @extschema@.usage'
				'	(usage_id, customer_id, service_id, user_id, started_at, duration_s)'
				'	OVERRIDING SYSTEM VALUE'
				' SELECT f.usage_id, $1, f.service_id, f.user_id, f.started_at, f.duration_s'
				'   FROM pg_catalog.jsonb_to_recordset($2)'
				'	 AS f(usage_id bigint, service_id text, user_id text, started_at timestamptz,'
				'		  duration_s integer)'
				'  WHERE f.usage_id = ANY ($3)'
			USING ingest_pstn_calls.customer_id, batch, coalesce(ids, '{}');
		n := coalesce(pg_catalog.cardinality(ids), 0)::bigint;
		RETURN QUERY SELECT n, total - n;
		RETURN;
	END IF;

	/*
	 * One pass over the response, in C (_pstn_store, src/pstn.c): it reads
	 * every row, checks and types it, and before anything is written
	 * refuses a document that is neither shape or the first bad row
	 * (22023, naming its position, its id and the property), then a kind
	 * of call without a service in call_mapping (23503).  It then inserts
	 * each id once into pstn_call, in Graph id order (two loads of
	 * overlapping responses insert their ids in the same order, so the one
	 * that waits for the other's uncommitted id never holds an id the other
	 * waits for), and the calls into usage, in usage_rating's order, with
	 * the usage_id drawn for each id.
	 *
	 * A plain INSERT first, without looking for the ids first: a response
	 * loaded for the first time pays for one unique check per id, the
	 * insert's own.  When an id is stored already (a response sent again),
	 * or is stored by a concurrent load that commits while this one waits
	 * for it, the insert fails on pstn_call_pkey, its subtransaction is
	 * undone, and the response is stored again with retry: the ids stored
	 * already left out, those a concurrent load stores meanwhile skipped
	 * (ON CONFLICT DO NOTHING); usage then gets only the calls of the ids
	 * this load inserted.
	 */
	BEGIN
		SELECT s.received, s.inserted INTO total, n
		  FROM @extschema@._pstn_store(ingest_pstn_calls.customer_id, calls, false) s;
	EXCEPTION WHEN unique_violation THEN
		GET STACKED DIAGNOSTICS pkey = CONSTRAINT_NAME;
		IF pkey IS DISTINCT FROM 'pstn_call_pkey' THEN
			RAISE;
		END IF;
		SELECT s.received, s.inserted INTO total, n
		  FROM @extschema@._pstn_store(ingest_pstn_calls.customer_id, calls, true) s;
	END;

	RETURN QUERY SELECT n, total - n;
END
$$;

COMMENT ON FUNCTION @extschema@.ingest_pstn_calls(text, jsonb) IS
'Ingests a Microsoft Graph getPstnCalls response ({"value": [pstnCallLogRow, ...]} or a bare array) of the customer into overage.usage: service from call_mapping (callType, destinationContext), user_id from userId, started_at from startDateTime, duration_s from duration. The row''s id is its identity: a row already stored (by any earlier or concurrent load, or earlier in the same response) is a duplicate and writes nothing. Refuses the whole response, writing nothing: a row with a missing or wrong-typed property, a non-positive or longer than 24 h duration (22023, naming the row''s id and the property), an unmapped kind (23503), an unknown customer (23503), a new call in a closed month (OV006). Returns the rows inserted and the duplicates. Operator only';
