--
-- fuzz: hostile arguments to every SQL-callable function of the extension
--
-- Not a pg_regress test (its output is long and not compared): run by
-- test/asan/run.sh under AddressSanitizer/UBSan and by valgrind.  Every
-- function is called once with valid arguments and then once for each
-- argument replaced by each hostile value of its type (NULL, empty, 1 MB,
-- control and multibyte characters, an SQL-injection attempt, invalid and
-- nil UUIDs, 'infinity'/'-infinity' and extreme timestamps, 0, -1,
-- 2^31-1, -2^31).  Each call must end in a correct answer or a clean error
-- (a SQLSTATE of a proper class); an internal error (class XX), a crash or
-- a sanitizer report fails.  It runs as superuser (operator) and again as
-- a partner's global admin, and finishes with direct writes that fire the
-- C triggers with hostile rows.
--
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS overage CASCADE;
DROP ROLE IF EXISTS regress_overage_fuzz;
CREATE EXTENSION overage;
SET timezone = 'UTC';

INSERT INTO overage.service (service_id, name, unit_price) VALUES ('voice', 'Domestic calling', 0.02);
INSERT INTO overage.sku (product_id, sku_id, title, tags) VALUES
	('E5', '0001', 'Microsoft 365 E5 with Calling Plan', 'IncludeOverage');
INSERT INTO overage.sku_service VALUES ('E5', '0001', 'voice', 120);
INSERT INTO overage.partner VALUES ('P1', 'Contoso'), ('P2', 'Fabrikam');
INSERT INTO overage.customer VALUES ('C1', 'Tailspin', 'US');
CREATE ROLE regress_overage_fuzz;
SELECT overage.add_agent('regress_overage_fuzz', 'P1', 'global_admin');
SELECT overage.purchase('P1', 'C1', 'E5', '0001', 10, '2026-01-01') AS lic \gset
SELECT subscription_id AS az FROM overage.subscription
 WHERE partner_id = 'P1' AND kind = 'azure_subscription' \gset

CREATE SCHEMA fuzz;
GRANT USAGE ON SCHEMA fuzz TO PUBLIC;
CREATE TABLE fuzz.result (n serial, who name, stmt text, sqlstate text, message text);
GRANT ALL ON fuzz.result, fuzz.result_n_seq TO PUBLIC;

-- hostile values per type, as SQL literals
CREATE TABLE fuzz.hostile (type text, lit text);
GRANT SELECT ON fuzz.hostile TO PUBLIC;
INSERT INTO fuzz.hostile VALUES
	('text', 'NULL'), ('text', $$''$$), ('text', $$repeat('x', 1048576)$$),
	('text', $$repeat('é', 524288)$$), ('text', $$E'P1\n\t\r'$$),
	('text', $$chr(1) || 'P1'$$), ('text', $$'P1'' OR ''1''=''1'$$),
	('text', $$'P1; DROP TABLE overage.holder; --'$$), ('text', $$' P1 '$$),
	('text', $$'%s%s%s%n'$$),
	('integer', 'NULL'), ('integer', '0'), ('integer', '-1'),
	('integer', '2147483647'), ('integer', '-2147483648'),
	('bigint', 'NULL'), ('bigint', '0'), ('bigint', '-9223372036854775808'),
	('timestamptz', 'NULL'), ('timestamptz', $$'infinity'$$),
	('timestamptz', $$'-infinity'$$), ('timestamptz', $$'4713-01-01 00:00:00+00 BC'$$),
	('timestamptz', $$'294276-12-31 23:59:59+00'$$), ('timestamptz', $$'epoch'$$),
	('uuid', 'NULL'), ('uuid', $$'00000000-0000-0000-0000-000000000000'$$),
	('uuid', $$'not-a-uuid'$$), ('uuid', $$''$$),
	('uuid', $$'ffffffff-ffff-ffff-ffff-ffffffffffff'$$),
	('name', 'NULL'), ('name', $$''$$), ('name', $$repeat('r', 1000)$$),
	('name', $$'pg_signal_backend'$$), ('name', $$'regress_overage_fuzz'$$),
	('numeric', 'NULL'), ('numeric', '0'), ('numeric', '-1'), ('numeric', $$'NaN'$$),
	('numeric', $$'Infinity'$$), ('numeric', $$'-Infinity'$$), ('numeric', '1e1000'),
	('date', 'NULL'), ('date', $$'infinity'$$), ('date', $$'-infinity'$$),
	('date', $$'4713-01-01 BC'$$), ('date', $$'5874897-12-31'$$), ('date', $$'epoch'$$),
	('jsonb', 'NULL'), ('jsonb', $$'null'$$), ('jsonb', $$'[]'$$), ('jsonb', $$'"x"'$$),
	('jsonb', $$'{}'$$), ('jsonb', $$'{"type": 1, "overageEnabled": "yes"}'$$),
	('jsonb', $$jsonb_build_object('type', repeat('x', 1048576), 'overageEnabled', true, 'azureEntitlementId', 'not-a-uuid')$$),
	('jsonb', $$'{"type": "voice", "overageEnabled": true, "azureEntitlementId": "00000000-0000-0000-0000-000000000000", "partnerId": "P1"}'$$),
	('jsonb', $$'{"type": "voice", "overageEnabled": false, "x": {"y": [1, 2]}}'$$),
	('jsonb', $$'[1, [], null, "a"]'$$), ('jsonb', $$'{"value": {}}'$$),
	('jsonb', $$(SELECT jsonb_agg(jsonb_build_object('id', gen_random_uuid(), 'userId', repeat('u', 1000),
		'startDateTime', '2026-02-10T00:00:00Z', 'duration', 2147483648, 'callType', 'x'))
		FROM generate_series(1, 2000))$$),
	('jsonb', $$'[{"id": "00000000-0000-0000-0000-000000000000", "userId": "u", "startDateTime": "294277-01-01T00:00:00Z", "duration": 1, "callType": "user_in"}]'$$),
	('jsonb', $$'[{"id": "00000000-0000-0000-0000-000000000000", "userId": "u", "startDateTime": "2026-02-10T00:00:00Z", "duration": 1e400, "callType": "user_in"}]'$$);
INSERT INTO overage.call_mapping VALUES ('user_in', NULL, 'voice');
INSERT INTO overage.service_price VALUES ('voice', 'US', 'USD', 0.03, '2026-01-01', NULL);
INSERT INTO overage.price_list_import ("ProductId", "SkuId", "SkuTitle", "Market", "Currency",
	"UnitPrice", "EffectiveStartDate", "EffectiveEndDate", "Tags")
VALUES ('E5', '0001', 'Microsoft 365 E5 with Calling Plan', 'US', 'USD', '57', '2026-01-01', '9999-11-30', 'IncludeOverage'),
	   (repeat('x', 100000), chr(1), '', 'é', 'US$', '1e9', '2/30/2026 0:00', '99/99/9999 99:99 PM', repeat(';', 100000));

-- every function with valid arguments (literal, type)
CREATE TABLE fuzz.call (fn text, args text[], types text[]);
GRANT SELECT ON fuzz.call TO PUBLIC;
INSERT INTO fuzz.call VALUES
	('overage.tags_include_overage', ARRAY[$$'IncludeOverage'$$], ARRAY['text']),
	('overage.sku_properties', ARRAY[$$'E5'$$, $$'0001'$$], ARRAY['text', 'text']),
	('overage.purchase', ARRAY[$$'P1'$$, $$'C1'$$, $$'E5'$$, $$'0001'$$, '3', $$'2026-02-01'$$],
		ARRAY['text', 'text', 'text', 'text', 'integer', 'timestamptz']),
	('overage.set_quantity', ARRAY[format('%L', :'lic'), '4', $$'2026-02-02'$$],
		ARRAY['uuid', 'integer', 'timestamptz']),
	('overage.create_azure_subscription', ARRAY[$$'P1'$$, $$'C1'$$, $$'2026-02-03'$$],
		ARRAY['text', 'text', 'timestamptz']),
	('overage.get_overage', ARRAY[$$'C1'$$], ARRAY['text']),
	('overage.assign_overage', ARRAY[$$'P1'$$, $$'C1'$$, $$'voice'$$, format('%L', :'az'), $$'2026-02-04'$$, 'NULL'],
		ARRAY['text', 'text', 'text', 'uuid', 'timestamptz', 'text']),
	('overage.release_overage', ARRAY[$$'P1'$$, $$'C1'$$, $$'voice'$$, $$'2026-02-05'$$],
		ARRAY['text', 'text', 'text', 'timestamptz']),
	('overage.cancel', ARRAY[format('%L', :'lic'), $$'2026-03-01'$$], ARRAY['uuid', 'timestamptz']),
	('overage.add_agent', ARRAY[$$'regress_overage_fuzz'$$, $$'P1'$$, $$'sales_agent'$$, 'NULL'],
		ARRAY['name', 'text', 'text', 'text']),
	('overage.get_overage_resource', ARRAY[$$'C1'$$], ARRAY['text']),
	('overage.put_overage_resource', ARRAY[$$'P1'$$, $$'C1'$$,
		format('%L', jsonb_build_object('type', 'voice', 'overageEnabled', true, 'azureEntitlementId', :'az')),
		$$'2026-02-05'$$], ARRAY['text', 'text', 'jsonb', 'timestamptz']),
	('overage._overage_items', ARRAY[$$'C1'$$, $$'P1'$$], ARRAY['text', 'text']),
	('overage._check_holder', ARRAY[$$'P1'$$, $$'C1'$$, $$'voice'$$, format('%L', :'az'), $$'2026-02-05'$$, $$'P2'$$],
		ARRAY['text', 'text', 'text', 'uuid', 'timestamptz', 'text']),
	('overage.request_transfer', ARRAY[$$'P2'$$, $$'C1'$$, $$'voice'$$, format('%L', :'az'), $$'2026-02-05'$$, 'NULL'],
		ARRAY['text', 'text', 'text', 'uuid', 'timestamptz', 'text']),
	('overage.consent_transfer', ARRAY[$$'5f0f5e3c-1b1a-4c57-9a52-6f4b8bde3e01'$$, $$'holder'$$, $$'2026-02-05'$$],
		ARRAY['uuid', 'text', 'timestamptz']),
	('overage.decline_transfer', ARRAY[$$'5f0f5e3c-1b1a-4c57-9a52-6f4b8bde3e01'$$, $$'customer'$$, $$'2026-02-05'$$],
		ARRAY['uuid', 'text', 'timestamptz']),
	('overage.withdraw_transfer', ARRAY[$$'5f0f5e3c-1b1a-4c57-9a52-6f4b8bde3e01'$$, $$'2026-02-05'$$],
		ARRAY['uuid', 'timestamptz']),
	('overage._authorize_transfer', ARRAY[$$'5f0f5e3c-1b1a-4c57-9a52-6f4b8bde3e01'$$, $$'holder'$$],
		ARRAY['uuid', 'text']),
	('overage._transfer_lock', ARRAY[$$'5f0f5e3c-1b1a-4c57-9a52-6f4b8bde3e01'$$, $$'2026-02-05'$$],
		ARRAY['uuid', 'timestamptz']),
	('overage._acting_customer', ARRAY[]::text[], ARRAY[]::text[]),
	('overage.remove_agent', ARRAY[$$'nobody_at_all'$$], ARRAY['name']),
	('overage.current_agent', ARRAY[]::text[], ARRAY[]::text[]),
	('overage._caller', ARRAY[]::text[], ARRAY[]::text[]),
	('overage._is_operator', ARRAY[]::text[], ARRAY[]::text[]),
	('overage._acting_partner', ARRAY[$$'read'$$], ARRAY['text']),
	('overage._allowed', ARRAY[$$'read'$$, $$'sales_agent'$$], ARRAY['text', 'text']),
	('overage._action_text', ARRAY[$$'read'$$], ARRAY['text']),
	('overage._authorize', ARRAY[$$'purchase'$$, $$'P1'$$], ARRAY['text', 'text']),
	('overage._authorize_subscription', ARRAY[$$'purchase'$$, format('%L', :'lic')], ARRAY['text', 'uuid']),
	('overage._authorize_customer', ARRAY[$$'read'$$, $$'C1'$$], ARRAY['text', 'text']),
	('overage._require', ARRAY[$$'x'$$, $$'v'::text$$], ARRAY['text', 'text']),
	('overage._require_exists', ARRAY[$$'customer'$$, $$'C1'$$], ARRAY['text', 'text']),
	('overage._provision', ARRAY[$$'P1'$$, $$'C1'$$, $$'2026-02-06'$$],
		ARRAY['text', 'text', 'timestamptz']),
	('overage._require_finite', ARRAY[$$'at'$$, $$'2026-02-06'$$], ARRAY['text', 'timestamptz']),
	('overage._require_reseller', ARRAY[$$'reseller_id'$$, $$'P1'$$, $$'P2'$$], ARRAY['text', 'text', 'text']),
	('overage.pool_status', ARRAY[$$'C1'$$, $$'voice'$$, $$'2026-02-07'$$],
		ARRAY['text', 'text', 'timestamptz']),
	('overage._rate_status', ARRAY[$$'C1'$$, $$'voice'$$, $$'2026-02-07'$$],
		ARRAY['text', 'text', 'timestamptz']),
	('overage.preview_month', ARRAY[$$'2026-02-01'$$], ARRAY['date']),
	('overage._month_lines', ARRAY[$$'2026-02-01'$$], ARRAY['date']),
	('overage._rate_month', ARRAY[$$'2026-02-01'$$], ARRAY['date']),
	('overage._rate_month_fresh', ARRAY[$$'2026-02-01'$$], ARRAY['date']),
	('overage._rate_shard', ARRAY[$$'2026-02-01'$$, $$'overage.usage'$$], ARRAY['date', 'regclass']),
	('overage._rate_month_shards', ARRAY[$$'2026-02-01'$$], ARRAY['date']),
	('overage.rate_pending', ARRAY[]::text[], ARRAY[]::text[]),
	('overage._rate_pending', ARRAY[$$'2026-02-01'$$], ARRAY['date']),
	('overage.rating_status', ARRAY[]::text[], ARRAY[]::text[]),
	('overage.reconciliation', ARRAY[$$'P1'$$, $$'2026-01-01'$$], ARRAY['text', 'date']),
	('overage.close_month', ARRAY[$$'2026-01-01'$$], ARRAY['date']),
	('overage.verify', ARRAY[]::text[], ARRAY[]::text[]),
	('overage._verify_at', ARRAY[$$'2026-02-06'$$], ARRAY['timestamptz']),
	('overage._verify_result', ARRAY[$$'check'$$, '3', $$'rows'$$, $$'{a,b}'::text[]$$],
		ARRAY['text', 'integer', 'text', 'text[]']),
	('overage.apply_price_list', ARRAY[]::text[], ARRAY[]::text[]),
	('overage._price_list_instant', ARRAY[$$'2/1/2023 0:00'$$], ARRAY['text']),
	('overage.ingest_pstn_calls', ARRAY[$$'C1'$$, $$'[{"id": "00000000-0000-4000-8000-000000000001", "userId": "u", "startDateTime": "2026-02-10T00:00:00Z", "duration": 60, "callType": "user_in", "destinationContext": null}]'$$],
		ARRAY['text', 'jsonb']),
	('overage.set_budget', ARRAY[$$'P1'$$, $$'C1'$$, '100', $$'{100,50,80}'$$],
		ARRAY['text', 'text', 'numeric', 'numeric[]']),
	('overage.remove_budget', ARRAY[$$'P1'$$, $$'C1'$$], ARRAY['text', 'text']),
	('overage._authorize_budget', ARRAY[$$'P1'$$, $$'C1'$$], ARRAY['text', 'text']),
	('overage._budget_currency', ARRAY[$$'P1'$$, $$'C1'$$], ARRAY['text', 'text']),
	('overage._raise_alerts', ARRAY[$$'2026-02-01'$$, $$'{pool,budget}'$$, $$'{P1,P1}'$$, $$'{C1,C1}'$$,
		$$'{voice,NULL}'$$, $$'{80,50}'$$, $$'{960,5.5}'$$, $$'{1200,11}'$$,
		$$'{2026-02-10 00:00+00,2026-02-11 00:00+00}'$$, $$'{t,f}'$$],
		ARRAY['date', 'text[]', 'text[]', 'text[]', 'text[]', 'numeric[]', 'numeric[]',
			  'numeric[]', 'timestamptz[]', 'boolean[]']),
	('overage.distribute', ARRAY['4'], ARRAY['integer']),
	('overage._distributed', ARRAY[]::text[], ARRAY[]::text[]),
	('overage._shards_may_rate', ARRAY[]::text[], ARRAY[]::text[]),
	('overage._citus_reshape', ARRAY[]::text[], ARRAY[]::text[]),
	('overage._customer_visible', ARRAY[$$'C1'$$], ARRAY['text']),
	('overage._licence_visible', ARRAY[$$'C1'$$, format('%L', :'lic')], ARRAY['text', 'uuid']),
	('overage._pstn_rows', ARRAY[$$'{"value": [{"id": "{00000000-0000-4000-8000-000000000001}", "userId": "u", "startDateTime": "2026-02-10T00:00:00.1234567+01:00", "duration": 60, "callType": "user_in"}]}'$$],
		ARRAY['jsonb']),
	('overage._pstn_store', ARRAY[$$'C1'$$, $$'{"value": [{"id": "00000000-0000-4000-8000-000000000002", "userId": "u", "startDateTime": "2026-02-10T00:00:00Z", "duration": 60, "callType": "user_in"}]}'$$, 'true'],
		ARRAY['text', 'jsonb', 'boolean']);

-- the list above is checked against the catalog: every function of the
-- extension that is not a trigger function is called
DO $$
DECLARE
	missing	text;
BEGIN
	SELECT string_agg(p.oid::regprocedure::text, ', ' ORDER BY 1) INTO missing
	  FROM pg_depend d JOIN pg_proc p ON p.oid = d.objid
	 WHERE d.classid = 'pg_proc'::regclass AND d.deptype = 'e'
	   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'overage')
	   AND p.prorettype <> 'trigger'::regtype
	   AND p.oid::regproc::text NOT IN (SELECT fn FROM fuzz.call);
	IF missing IS NOT NULL THEN
		RAISE EXCEPTION 'fuzz.call misses functions of the extension: %', missing;
	END IF;
END
$$;

-- run every call: the valid one, then each argument replaced by each
-- hostile value of its type; record the outcome
CREATE FUNCTION fuzz.run() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	c		record;
	h		record;
	a		text[];
	stmt	text;
	st		text;
	msg		text;
BEGIN
	FOR c IN SELECT * FROM fuzz.call LOOP
		FOR i IN 0 .. coalesce(array_length(c.args, 1), 0) LOOP
			FOR h IN
				SELECT * FROM fuzz.hostile
				 WHERE i > 0 AND type = c.types[i]
				UNION ALL
				SELECT NULL, NULL WHERE i = 0
			LOOP
				a := c.args;
				IF i > 0 THEN
					a[i] := h.lit;
				END IF;
				SELECT format('SELECT * FROM %s(%s)', c.fn,
							  string_agg(format('(%s)::%s', x.lit, c.types[x.o]), ', ' ORDER BY x.o))
				  INTO stmt
				  FROM unnest(a) WITH ORDINALITY AS x(lit, o);
				IF stmt IS NULL THEN
					stmt := format('SELECT * FROM %s()', c.fn);
				END IF;
				BEGIN
					EXECUTE stmt;
					st := '00000';
					msg := NULL;
				EXCEPTION WHEN OTHERS THEN
					GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
				END;
				INSERT INTO fuzz.result (who, stmt, sqlstate, message)
				VALUES (current_user, left(stmt, 300), st, left(msg, 200));
			END LOOP;
		END LOOP;
	END LOOP;
END
$$;
GRANT EXECUTE ON FUNCTION fuzz.run() TO PUBLIC;

-- as the operator
SELECT fuzz.run();
-- as a partner's global admin (internal functions refuse it; the API
-- takes the authorization paths)
SET ROLE regress_overage_fuzz;
SELECT fuzz.run();
RESET ROLE;

-- direct writes that fire the C triggers with hostile rows (operator)
CREATE FUNCTION fuzz.dml(stmt text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	st	text := '00000';
	msg	text;
BEGIN
	BEGIN
		EXECUTE stmt;
	EXCEPTION WHEN OTHERS THEN
		GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
	END;
	INSERT INTO fuzz.result (who, stmt, sqlstate, message)
	VALUES (current_user, left(stmt, 300), st, left(msg, 200));
END
$$;
SELECT fuzz.dml(s) FROM unnest(ARRAY[
	$$INSERT INTO overage.holder VALUES ('C1', 'voice', 'P1', NULL, now(), 'assign')$$,
	$$INSERT INTO overage.holder VALUES ('C1', 'voice', NULL, NULL, 'infinity', 'release')$$,
	$$UPDATE overage.holder SET since = '-infinity'$$,
	$$UPDATE overage.holder SET since = 'infinity', partner_id = NULL, subscription_id = NULL$$,
	$$UPDATE overage.holder SET partner_id = repeat('P', 1048576)$$,
	$$UPDATE overage.holder SET customer_id = 'C2'$$,
	$$DELETE FROM overage.holder$$,
	$$TRUNCATE overage.holder_period$$,
	$$INSERT INTO overage.license_quantity VALUES (gen_random_uuid(), now(), NULL, 1)$$,
	$$UPDATE overage.subscription SET quantity = 2147483647, changed_at = 'infinity' WHERE kind = 'license'$$,
	$$UPDATE overage.subscription SET changed_at = '-infinity'$$,
	$$UPDATE overage.subscription SET status = 'cancelled', ended_at = 'infinity', changed_at = 'infinity' WHERE kind = 'license'$$,
	$$UPDATE overage.subscription SET partner_id = 'P2'$$,
	$$DELETE FROM overage.subscription$$,
	$$INSERT INTO overage.sku (product_id, sku_id, title, tags) VALUES ('X', '1', 'x', repeat(';', 1048576) || 'IncludeOverage')$$,
	$$INSERT INTO overage.sku (product_id, sku_id, title, tags) VALUES ('X', '2', 'x', E'\u00e9IncludeOverage\u00e9')$$
]) AS s;

-- what happened, by function and outcome
SELECT split_part(split_part(stmt, '(', 1), ' ', 4) AS fn, who, sqlstate, count(*)
  FROM fuzz.result GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;

-- outcomes a user should never see: internal errors, or a success where
-- the arguments were bad in a way every function must refuse
SELECT who, sqlstate, message, left(stmt, 160) AS stmt
  FROM fuzz.result
 WHERE sqlstate LIKE 'XX%' OR sqlstate LIKE '58%' OR sqlstate = '42883'
 ORDER BY n;
SET client_min_messages = notice;
DO $$
BEGIN
	IF EXISTS (SELECT 1 FROM fuzz.result
				WHERE sqlstate LIKE 'XX%' OR sqlstate LIKE '58%' OR sqlstate = '42883') THEN
		RAISE EXCEPTION 'fuzz: internal errors (listed above)';
	END IF;
	RAISE NOTICE 'fuzz: % calls, no internal error', (SELECT count(*) FROM fuzz.result);
END
$$;

SET client_min_messages = warning;
SELECT who, left(stmt, 200) FROM fuzz.result WHERE sqlstate = '00000' AND stmt LIKE '%overage.%' ORDER BY n;
DROP SCHEMA fuzz CASCADE;
DROP EXTENSION overage;
DROP ROLE regress_overage_fuzz;
