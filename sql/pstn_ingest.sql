--
-- pstn_ingest: Microsoft Graph call records (a getPstnCalls response, one
-- pstnCallLogRow per call) ingested into overage.usage through
-- call_mapping; a row's id is its identity (delivered twice, stored once);
-- every refusal has its SQLSTATE and writes nothing.
--
CREATE EXTENSION overage;
\set SHOW_CONTEXT never
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';

INSERT INTO overage.service (service_id, name, unit_price) VALUES
	('DOM', 'Domestic calling', 0.02), ('INTL', 'International calling', 0.12);
INSERT INTO overage.customer VALUES ('C1', 'Tailspin', 'SE'), ('C2', 'Wingtip', 'NO');
-- every kind the sample response holds; inbound calls have no destinationContext
INSERT INTO overage.call_mapping VALUES
	('user_out', 'Domestic', 'DOM'), ('user_out', 'International', 'INTL'),
	('user_in', NULL, 'DOM'), ('user_out_conf', 'Domestic', 'DOM'),
	('user_out_transfer', 'Domestic', 'DOM'), ('user_out_forwarding', 'International', 'INTL'),
	('conf_in', NULL, 'DOM'), ('conf_out', 'Domestic', 'DOM');
-- one service per kind (NULL is a kind of its own)
INSERT INTO overage.call_mapping VALUES ('user_in', NULL, 'INTL');

CREATE VIEW pg_temp.written AS
	SELECT (SELECT count(*) FROM overage.usage) AS calls,
		   (SELECT count(*) FROM overage.pstn_call) AS graph_ids,
		   -- the figures: taken in by the rating, or pending
		   (SELECT coalesce(sum(seconds), 0) FROM overage.usage_month) +
		   (SELECT coalesce(sum(x), 0) FROM overage.usage_pending p, unnest(p.seconds) AS x)
			 AS seconds;

\set calls `cat test/data/graph_pstn_calls_sample.json`
-- the sample: 262 rows, two of them a retry of earlier rows (same id)
SELECT jsonb_array_length(:'calls'::jsonb -> 'value') AS rows,
	   count(DISTINCT r ->> 'id') AS ids,
	   sum((r ->> 'duration')::int) FILTER (WHERE o <= 260) AS seconds_of_distinct_rows
  FROM jsonb_array_elements(:'calls'::jsonb -> 'value') WITH ORDINALITY AS e(r, o);
SELECT * FROM overage.ingest_pstn_calls('C1', :'calls');
SELECT * FROM pg_temp.written;
-- each call once, with its service, user, start and duration
SELECT count(*) AS matching_calls
  FROM jsonb_array_elements(:'calls'::jsonb -> 'value') WITH ORDINALITY AS e(r, o)
  JOIN overage.pstn_call p ON p.call_id = (e.r ->> 'id')::uuid
  JOIN overage.usage u ON u.usage_id = p.usage_id
  JOIN overage.call_mapping m ON m.call_type = e.r ->> 'callType'
   AND m.destination_context IS NOT DISTINCT FROM e.r ->> 'destinationContext'
 WHERE e.o <= 260 AND u.customer_id = 'C1' AND u.service_id = m.service_id
   AND u.user_id = e.r ->> 'userId' AND u.started_at = (e.r ->> 'startDateTime')::timestamptz
   AND u.duration_s = (e.r ->> 'duration')::int;
SELECT u.service_id, p.call_type, p.destination_context, count(*)
  FROM overage.pstn_call p JOIN overage.usage u USING (usage_id)
 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;

-- the same response again: nothing written, every row a duplicate
SELECT * FROM overage.ingest_pstn_calls('C1', :'calls');
SELECT * FROM pg_temp.written;
-- a bare array; an id seen before counts as a duplicate even for another
-- customer; the GUID's case and braces do not make it another id
SELECT * FROM overage.ingest_pstn_calls('C2', jsonb_build_array(
	:'calls'::jsonb -> 'value' -> 0,
	'{"id": "{AAAAAAAA-0000-4000-8000-000000000001}", "userId": "u9", "startDateTime": "2026-10-02T08:00:00Z",
	  "duration": 61, "callType": "user_out", "destinationContext": "International"}'::jsonb,
	'{"id": "aaaaaaaa-0000-4000-8000-000000000001", "userId": "u9", "startDateTime": "2026-10-02T08:00:00Z",
	  "duration": 61, "callType": "user_out", "destinationContext": "International"}'::jsonb));
SELECT customer_id, service_id, user_id, started_at, duration_s FROM overage.usage WHERE customer_id = 'C2';
-- a later page holding one stored id among five new ones, neither the first,
-- the middle nor the last id: the plain insert meets it, its
-- subtransaction is undone, and the response is stored again without it
SELECT * FROM overage.ingest_pstn_calls('C2', (
	SELECT jsonb_agg(jsonb_build_object('id', id, 'userId', 'u8', 'startDateTime', '2026-10-03T08:00:00Z',
			'duration', 30, 'callType', 'user_out', 'destinationContext', 'Domestic') ORDER BY id DESC)
	  FROM unnest(ARRAY['00000000-0000-4000-8000-0000000000a1', '00000000-0000-4000-8000-0000000000a2',
						'aaaaaaaa-0000-4000-8000-000000000001', 'bbbbbbbb-0000-4000-8000-000000000001',
						'cccccccc-0000-4000-8000-000000000001', 'dddddddd-0000-4000-8000-000000000001']) id));
SELECT p.call_id, u.user_id, u.started_at, u.duration_s
  FROM overage.pstn_call p JOIN overage.usage u USING (usage_id)
 WHERE p.customer_id = 'C2' ORDER BY p.call_id;
-- an empty response
SELECT * FROM overage.ingest_pstn_calls('C1', '{"value": []}');
SELECT * FROM pg_temp.written;

------------------------------------------------------------------------------
-- Refusals: each names the row (position and id) and the property, and
-- writes nothing
------------------------------------------------------------------------------
CREATE FUNCTION pg_temp.row(patch jsonb, drop_key text DEFAULT NULL) RETURNS jsonb LANGUAGE sql AS $$
	SELECT jsonb_build_array(
		'{"id": "bbbbbbbb-0000-4000-8000-000000000001", "userId": "u1", "startDateTime": "2026-10-03T09:00:00.1234567Z",
		  "duration": 60, "callType": "user_out", "destinationContext": "Domestic"}'::jsonb,
		('{"id": "bbbbbbbb-0000-4000-8000-000000000002", "userId": "u1", "startDateTime": "2026-10-03T10:00:00Z",
		   "duration": 60, "callType": "user_out", "destinationContext": "Domestic"}'::jsonb - coalesce(drop_key, '')) || patch) $$;
SELECT * FROM pg_temp.written \gset before_
-- missing properties
SELECT * FROM overage.ingest_pstn_calls('C1', pg_temp.row('{}', 'id'));
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM overage.ingest_pstn_calls('C1', pg_temp.row('{}', 'userId'));
SELECT * FROM overage.ingest_pstn_calls('C1', pg_temp.row('{}', 'startDateTime'));
SELECT * FROM overage.ingest_pstn_calls('C1', pg_temp.row('{}', 'duration'));
SELECT * FROM overage.ingest_pstn_calls('C1', pg_temp.row('{}', 'callType'));
SELECT * FROM overage.ingest_pstn_calls('C1', pg_temp.row('{"userId": null}'));
-- wrong types and values
SELECT * FROM overage.ingest_pstn_calls('C1', pg_temp.row('{"id": 42}'));
SELECT * FROM overage.ingest_pstn_calls('C1', pg_temp.row('{"id": "call-0002"}'));
SELECT * FROM overage.ingest_pstn_calls('C1', pg_temp.row('{"userId": ["u1"]}'));
SELECT * FROM overage.ingest_pstn_calls('C1', pg_temp.row('{"userId": ""}'));
SELECT * FROM overage.ingest_pstn_calls('C1', pg_temp.row('{"startDateTime": 1791000000}'));
SELECT * FROM overage.ingest_pstn_calls('C1', pg_temp.row('{"startDateTime": "2026-10-03 10:00:00"}'));
SELECT * FROM overage.ingest_pstn_calls('C1', pg_temp.row('{"startDateTime": "2026-02-30T10:00:00Z"}'));
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM overage.ingest_pstn_calls('C1', pg_temp.row('{"startDateTime": "2099-01-01T00:00:00Z"}'));
SELECT * FROM overage.ingest_pstn_calls('C1', pg_temp.row('{"duration": "60"}'));
SELECT * FROM overage.ingest_pstn_calls('C1', pg_temp.row('{"duration": 0}'));
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM overage.ingest_pstn_calls('C1', pg_temp.row('{"duration": -5}'));
SELECT * FROM overage.ingest_pstn_calls('C1', pg_temp.row('{"duration": 60.5}'));
SELECT * FROM overage.ingest_pstn_calls('C1', pg_temp.row('{"duration": 86401}'));
SELECT * FROM overage.ingest_pstn_calls('C1', pg_temp.row('{"duration": 1e10}'));
SELECT * FROM overage.ingest_pstn_calls('C1', pg_temp.row('{"callType": false}'));
SELECT * FROM overage.ingest_pstn_calls('C1', pg_temp.row('{"destinationContext": 1}'));
-- a row that is not an object; a document that is neither shape
SELECT * FROM overage.ingest_pstn_calls('C1', '[{"id": "bbbbbbbb-0000-4000-8000-000000000001"}, "call"]');
SELECT * FROM overage.ingest_pstn_calls('C1', '{"values": []}');
SELECT * FROM overage.ingest_pstn_calls('C1', '"calls"');
\echo :LAST_ERROR_SQLSTATE
-- a kind without a service: 23503, naming the kind
SELECT * FROM overage.ingest_pstn_calls('C1', pg_temp.row('{"callType": "ucap_out"}'));
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM overage.ingest_pstn_calls('C1', pg_temp.row('{"destinationContext": "Mobile"}'));
-- unknown or NULL customer, NULL calls
SELECT * FROM overage.ingest_pstn_calls('C9', pg_temp.row('{}'));
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM overage.ingest_pstn_calls(NULL, pg_temp.row('{}'));
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM overage.ingest_pstn_calls('C1', NULL);
-- a new call in a closed month: OV006 (usage's own rule), nothing written
SELECT overage.close_month('2026-09-01');
SELECT * FROM overage.ingest_pstn_calls('C1', pg_temp.row('{"startDateTime": "2026-09-30T23:59:59Z"}'));
\echo :LAST_ERROR_SQLSTATE
-- a duplicate of a call of a closed month is no error: it is not written again
SELECT * FROM overage.ingest_pstn_calls('C1', jsonb_build_array(:'calls'::jsonb -> 'value' -> 5));
SELECT * FROM pg_temp.written;
SELECT calls = :before_calls AND graph_ids = :before_graph_ids AND seconds = :before_seconds
	   AS nothing_written FROM pg_temp.written;

-- only the operator ingests
CREATE ROLE regress_overage_pstn_ga;
INSERT INTO overage.partner VALUES ('P1', 'Contoso');
SELECT overage.add_agent('regress_overage_pstn_ga', 'P1', 'global_admin');
SET ROLE regress_overage_pstn_ga;
SELECT * FROM overage.ingest_pstn_calls('C1', pg_temp.row('{}'));
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM overage.pstn_call;
RESET ROLE;
SELECT overage.remove_agent('regress_overage_pstn_ga');
DROP ROLE regress_overage_pstn_ga;

DROP VIEW pg_temp.written;
DROP EXTENSION overage;
