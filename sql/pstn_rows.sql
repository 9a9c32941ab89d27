--
-- pstn_rows: _pstn_rows (src/pstn.c) judges a Graph row's id, startDateTime
-- and duration by hand; each must agree with what PostgreSQL's own input
-- functions say (the uuid and timestamptz casts, numeric), value by value.
--
CREATE EXTENSION overage;
\set SHOW_CONTEXT never
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
INSERT INTO overage.service (service_id, name, unit_price) VALUES ('DOM', 'Domestic', 0.02);
INSERT INTO overage.call_mapping VALUES ('user_in', NULL, 'DOM');

CREATE FUNCTION pg_temp.one(id text DEFAULT 'bbbbbbbb-0000-4000-8000-000000000001',
							start text DEFAULT '2026-10-03T10:00:00Z',
							duration jsonb DEFAULT '60')
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	r	record;
BEGIN
	SELECT * INTO r FROM overage._pstn_rows(jsonb_build_array(jsonb_build_object(
		'id', id, 'userId', 'u1', 'startDateTime', start, 'duration', duration,
		'callType', 'user_in')));
	RETURN format('%s %s %s', r.call_id, r.started_at, r.duration_s);
EXCEPTION WHEN invalid_parameter_value THEN
	RETURN regexp_replace(SQLERRM, '^.*property ', '');
END
$$;

CREATE FUNCTION pg_temp.cast(s text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	RETURN s::timestamptz::text;
EXCEPTION WHEN OTHERS THEN
	RETURN 'cast fails: ' || SQLERRM;
END
$$;

-- startDateTime: where it matches the pattern, the instant of the cast, or
-- "is not a real instant" where the cast fails
SELECT s, pg_temp.one(start => s) AS pstn_rows, pg_temp.cast(s) AS cast
  FROM (VALUES ('2026-10-03T10:00:00Z'), ('2026-10-03T10:00:00.1234567Z'),
			   ('2026-10-03T10:00:00.9999995Z'), ('2026-10-03T23:59:59.9999999+00:00'),
			   ('2026-10-03T10:00:00.123456789-05:30'), ('2026-10-03T10:00:00+15:59'),
			   ('2026-10-03T10:00:00+16:00'), ('2026-10-03T10:00:00+01:60'),
			   ('2024-02-29T00:00:00Z'), ('2026-02-29T00:00:00Z'), ('2026-02-30T10:00:00Z'),
			   ('2026-04-31T00:00:00Z'), ('2026-13-01T00:00:00Z'), ('2026-00-10T00:00:00Z'),
			   ('2026-10-00T00:00:00Z'), ('0000-01-01T00:00:00Z'), ('0001-01-01T00:00:00Z'),
			   ('2026-10-03T24:00:00Z'), ('2026-10-03T24:00:01Z'), ('2026-10-03T25:00:00Z'),
			   ('2026-10-03T10:60:00Z'), ('2026-10-03T23:59:60Z'), ('2026-10-03T23:59:60.5Z'),
			   ('2026-10-03T10:00:61Z'), ('2026-10-03t10:00:00Z'), ('2026-10-03T10:00:00z'),
			   ('2026-10-03T10:00:00'), ('2026-10-03T10:00Z'), ('2026-10-03T10:00:00.Z'),
			   ('2026-10-03T10:00:00.1234567890Z'), ('2026-10-03T10:00:00+0100'),
			   ('+2026-10-03T10:00:00Z'), ('2026-10-03T10:00:00Z '), ('２０２６-10-03T10:00:00Z'))
		 AS v(s);

-- id: a GUID in any case, hyphens optional, braces both or neither
SELECT s, pg_temp.one(id => s) AS pstn_rows
  FROM (VALUES ('BBBBBBBB-0000-4000-8000-00000000000A'), ('{bbbbbbbb-0000-4000-8000-00000000000a}'),
			   ('bbbbbbbb00004000800000000000000a'), ('bbbbbbbb-00004000-8000-00000000000a'),
			   ('{bbbbbbbb-0000-4000-8000-00000000000a'), ('bbbbbbbb-0000-4000-8000-00000000000a}'),
			   ('bbbbbbbb-0000-4000-8000-00000000000'), ('bbbbbbbb-0000-4000-8000-00000000000a0'),
			   ('bbbbbbbb-0000-4000-8000-00000000000g'), ('bbbb-bbbb-0000-4000-8000-00000000000a'),
			   ('-bbbbbbbb-0000-4000-8000-00000000000a'), ('')) AS v(s);

-- duration: a whole number of seconds, 1 to 86400, however written
SELECT d, pg_temp.one(duration => d::jsonb) AS pstn_rows
  FROM (VALUES ('1'), ('60.0'), ('6e1'), ('0.6e2'), ('86400'), ('86400.000'), ('86401'),
			   ('0'), ('-0.0'), ('-1'), ('0.5'), ('1e-1'), ('1e400'), ('99999'),
			   ('100000')) AS v(d);

DROP EXTENSION overage;
