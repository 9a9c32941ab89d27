--
-- ingest_bad: every refusal of overage.usage fails the whole statement
-- with a clear error and SQLSTATE, and writes nothing.
--
-- Bounds: duration_s 1 .. 86400 (24 h); started_at finite and at most one
-- day after now() (the transaction start); month not closed.
--
CREATE EXTENSION overage;
\set SHOW_CONTEXT never
-- show instants in UTC, the zone of billing months (results do not depend
-- on the session's zone; attribution.sql shows that)
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';

INSERT INTO overage.service (service_id, name, unit_price) VALUES
	('CALL', 'Domestic calling', 0.02);
INSERT INTO overage.customer VALUES ('C1', 'Contoso', 'US');
-- a closed month to refuse
SELECT overage.close_month('2026-09-01');

CREATE VIEW pg_temp.written AS
	SELECT (SELECT count(*) FROM overage.usage) AS calls,
		   -- groups with figures: taken in by the rating, or pending
		   (SELECT count(*) FROM
				(SELECT f.month, f.customer_id, f.service_id FROM overage.usage_month f
				 UNION
				 SELECT p.month, u.c, u.s FROM overage.usage_pending p,
						unnest(p.customer_id, p.service_id) AS u(c, s)) g) AS figures;

-- unknown customer: 23503
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s)
	VALUES ('C9', 'CALL', 'u', '2026-10-01 10:00Z', 60);
\echo :LAST_ERROR_SQLSTATE
-- unknown service: 23503
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s)
	VALUES ('C1', 'FAX', 'u', '2026-10-01 10:00Z', 60);
\echo :LAST_ERROR_SQLSTATE
-- duration 0 and negative: 23514 (check constraint)
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s)
	VALUES ('C1', 'CALL', 'u', '2026-10-01 10:00Z', 0);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s)
	VALUES ('C1', 'CALL', 'u', '2026-10-01 10:00Z', -5);
\echo :LAST_ERROR_SQLSTATE
-- NULL duration, time, customer: 23502
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s)
	VALUES ('C1', 'CALL', 'u', '2026-10-01 10:00Z', NULL);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s)
	VALUES ('C1', 'CALL', 'u', NULL, 60);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s)
	VALUES (NULL, 'CALL', 'u', '2026-10-01 10:00Z', 60);
\echo :LAST_ERROR_SQLSTATE
-- longer than 24 h: 22023
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s)
	VALUES ('C1', 'CALL', 'u', '2026-10-01 10:00Z', 86401);
\echo :LAST_ERROR_SQLSTATE
-- more than a day in the future: 22023
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s)
	VALUES ('C1', 'CALL', 'u', '2099-01-01 00:00Z', 60);
\echo :LAST_ERROR_SQLSTATE
-- not a finite instant: 22023
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s)
	VALUES ('C1', 'CALL', 'u', '-infinity', 60);
\echo :LAST_ERROR_SQLSTATE
-- inside a closed month: OV006
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s)
	VALUES ('C1', 'CALL', 'u', '2026-09-30 23:59:59.999999Z', 60);
\echo :LAST_ERROR_SQLSTATE
-- the usage_id is the extension's: 428C9
INSERT INTO overage.usage (usage_id, customer_id, service_id, user_id, started_at, duration_s)
	VALUES (1, 'C1', 'CALL', 'u', '2026-10-01 10:00Z', 60);
\echo :LAST_ERROR_SQLSTATE

-- one bad row among good ones fails the whole statement: INSERT and COPY
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s) VALUES
	('C1', 'CALL', 'u', '2026-10-01 10:00Z', 60),
	('C1', 'CALL', 'u', '2026-10-01 11:00Z', 100000),
	('C1', 'CALL', 'u', '2026-10-01 12:00Z', 60);
\echo :LAST_ERROR_SQLSTATE
COPY overage.usage (customer_id, service_id, user_id, started_at, duration_s) FROM stdin;
C1	CALL	u	2026-10-02 10:00:00+00	60
C9	CALL	u	2026-10-02 11:00:00+00	60
C1	CALL	u	2026-10-02 12:00:00+00	60
\.

-- nothing was written by any of the above
SELECT * FROM pg_temp.written;

-- the bounds themselves are accepted: 1 s, 86400 s, exactly now() + 1 day
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s) VALUES
	('C1', 'CALL', 'u', '2026-10-01 00:00Z', 1),
	('C1', 'CALL', 'u', '2026-10-31 23:59:59.999999Z', 86400),
	('C1', 'CALL', 'u', now() + interval '1 day', 60);
SELECT * FROM pg_temp.written;		-- 3 calls, 2 figures (October, and now + 1 day's month)
SELECT overage.rate_pending() AS rated;	-- the figures are taken in by the rating: 3 calls
SELECT month, calls, seconds FROM overage.usage_month WHERE month = '2026-10-01';	-- 2, 86401

DROP VIEW pg_temp.written;
DROP EXTENSION overage;
