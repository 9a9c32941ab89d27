--
-- attribution: overage seconds go to the subscription holding the overage
-- at the instant the call starts; under None or before any holder they are
-- unassigned.  Calls are rated in order of (started_at, usage_id), whatever
-- order they arrived in.
--
CREATE EXTENSION overage;
\set SHOW_CONTEXT never
-- show instants in UTC, the zone of billing months (results do not depend
-- on the session's zone; attribution.sql shows that)
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';

INSERT INTO overage.service (service_id, name, unit_price) VALUES
	('CALL', 'Domestic calling', 0.02);
INSERT INTO overage.sku (product_id, sku_id, title, tags) VALUES
	('E5', '1', 'E5 with calling, 1 minute', 'IncludeOverage'),
	('E3', '1', 'E3 with calling, 2 minutes, no overage', NULL);
INSERT INTO overage.sku_service VALUES
	('E5', '1', 'CALL', 1),
	('E3', '1', 'CALL', 2);
INSERT INTO overage.partner VALUES ('P1', 'Partner one'), ('P2', 'Partner two');
INSERT INTO overage.customer VALUES
	('C1', 'Contoso', 'US'),	-- handoff P1 -> None -> P2
	('C2', 'Fabrikam', 'DE'),	-- never assigned (no overage SKU)
	('C3', 'Tailspin', 'FR');	-- well within its pool

-- C1: P1 and P2 each buy 1 x E5: pool 120 s; P1 is first in.
SELECT overage.purchase('P1', 'C1', 'E5', '1', 1, '2026-09-01 00:00Z') IS NOT NULL;
SELECT overage.purchase('P2', 'C1', 'E5', '1', 1, '2026-09-02 00:00Z') IS NOT NULL;
SELECT subscription_id AS o1 FROM overage.subscription
 WHERE partner_id = 'P1' AND customer_id = 'C1' AND kind = 'overage' \gset
SELECT subscription_id AS o2 FROM overage.subscription
 WHERE partner_id = 'P2' AND customer_id = 'C1' AND kind = 'overage' \gset
-- holder: P1 (o1) until 10-10 00:00, None until 10-15 00:00, then P2 (o2)
SELECT overage.release_overage('P1', 'C1', 'CALL', '2026-10-10 00:00Z');
SELECT overage.assign_overage('P2', 'C1', 'CALL', :'o2', '2026-10-15 00:00Z');
SELECT partner_id, subscription_id = :'o1' AS is_o1, subscription_id = :'o2' AS is_o2,
	   valid_from, valid_to
  FROM overage.holder_period WHERE customer_id = 'C1' ORDER BY valid_from;

-- C2: 1 x E3 (no IncludeOverage): pool 120 s, never a holder
SELECT overage.purchase('P2', 'C2', 'E3', '1', 1, '2026-09-01 00:00Z') IS NOT NULL;
-- C3: 1 x E3: pool 120 s
SELECT overage.purchase('P1', 'C3', 'E3', '1', 1, '2026-09-01 00:00Z') IS NOT NULL;

-- The calls arrive out of order, in four statements.  In rating order
-- (started_at, usage_id), C1, pool 120 s throughout:
--   c0  10-01 00:00:00   10 s  before   0: included  10, overage  0
--   c1  10-05 12:00     130 s  before  10: included 110, overage 20 -> o1
--   c1b 10-10 00:00:00    5 s  before 140: overage  5 -> None (release instant)
--   c2  10-12 08:00      30 s  before 145: overage 30 -> None
--   c3  10-12 08:00      20 s  tie on started_at, later usage_id: overage 20 -> None
--   c4  10-15 00:00:00   30 s  overage 30 -> o2 (exactly at the assignment)
--   c5  10-20 09:00      60 s  overage 60 -> o2
-- => o1 20 s, o2 90 s, unassigned 55 s.
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s) VALUES
	('C1', 'CALL', 'u4', '2026-10-15 00:00:00Z', 30),		-- c4
	('C1', 'CALL', 'u5', '2026-10-20 09:00Z', 60);			-- c5
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s) VALUES
	('C1', 'CALL', 'u2', '2026-10-12 08:00Z', 30),			-- c2
	('C1', 'CALL', 'u3', '2026-10-12 08:00Z', 20),			-- c3 (same instant)
	('C1', 'CALL', 'u1', '2026-10-05 12:00Z', 130);			-- c1
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s) VALUES
	('C1', 'CALL', 'u1', '2026-10-10 00:00:00Z', 5),		-- c1b
	('C1', 'CALL', 'u0', '2026-10-01 00:00:00Z', 10),		-- c0 (month start)
	-- outside October: September's last second, November's first
	('C1', 'CALL', 'u9', '2026-09-30 23:59:59Z', 1000),
	('C1', 'CALL', 'u9', '2026-11-01 00:00:00Z', 500);
-- C2: 100 + 50 s, pool 120: second call 30 s overage, never assigned
-- C3: 60 s, pool 120: nothing
COPY overage.usage (customer_id, service_id, user_id, started_at, duration_s) FROM stdin;
C2	CALL	x	2026-10-03 10:00:00+00	100
C2	CALL	y	2026-10-04 10:00:00+00	50
C3	CALL	z	2026-10-04 10:00:00+00	60
\.

-- October lines:
--   C1 o1          20 s  0.333333 min  20 * 0.02 / 60 = 0.006667 -> 0.01
--   C1 o2          90 s  1.500000 min  0.03
--   C1 unassigned  55 s  0.916667 min  0.018333 -> 0.02
--   C2 unassigned  30 s  0.500000 min  0.01
SELECT partner_id, customer_id, service_id,
	   CASE subscription_id WHEN :'o1' THEN 'o1' WHEN :'o2' THEN 'o2' END AS sub,
	   overage_seconds, quantity, amount
  FROM overage.preview_month('2026-10-01');

-- September: c 09-30 23:59:59 of 1000 s, pool 120 (P2's licence from
-- 09-02): 880 s -> o1 (P1 held it).  November: 500 s at 11-01 00:00,
-- used_before starts again at 0: 380 s -> o2.
SELECT month, partner_id, customer_id,
	   CASE subscription_id WHEN :'o1' THEN 'o1' WHEN :'o2' THEN 'o2' END AS sub,
	   overage_seconds
  FROM overage.preview_month('2026-09-30')
UNION ALL
SELECT month, partner_id, customer_id,
	   CASE subscription_id WHEN :'o1' THEN 'o1' WHEN :'o2' THEN 'o2' END AS sub,
	   overage_seconds
  FROM overage.preview_month('2026-11-30');

-- pool_status mid-month, at 10-12 08:00 (c2 and c3 start at at: not
-- counted): used c0+c1+c1b = 145 s = 2.416667, pool 2, remaining 0,
-- overage 25 s = 0.416667 of which unassigned 5 s = 0.083333
SELECT * FROM overage.pool_status('C1', 'CALL', '2026-10-12 08:00Z');
-- a microsecond later both tied calls count: used 195 s = 3.25,
-- overage 75 s = 1.25, unassigned 55 s = 0.916667
SELECT * FROM overage.pool_status('C1', 'CALL', '2026-10-12 08:00:00.000001Z');
-- C3 at the month end, figures say 60 s <= pool 120: used 1, remaining 1
SELECT * FROM overage.pool_status('C3', 'CALL', '2026-10-31 23:00Z');
-- C2: used 2.5, pool 2, overage 0.5, all unassigned (never assigned)
SELECT * FROM overage.pool_status('C2', 'CALL', '2026-10-31 23:00Z');

-- months are UTC months whatever the session's zone: at 2026-10-31 23:00Z
-- it is already November 1 in Kiritimati (UTC+14), yet the call of
-- 11-01 00:00Z is still November's and 10-31 23:00Z still October's
SET TimeZone = 'Pacific/Kiritimati';
SELECT month, used_minutes FROM overage.pool_status('C1', 'CALL', '2026-10-31 23:00Z');	-- 2026-10-01, 4.75
SELECT month, overage_seconds FROM overage.preview_month('2026-11-01');		-- 2026-11-01, 380
RESET TimeZone;
SET TimeZone = 'UTC';

--
-- The same lines by a straightforward SQL model of SPEC "Attributing a
-- call" (correlated subqueries for the pool and the holder at each call,
-- a window sum for used_before): preview_month must agree line for line.
--
CREATE FUNCTION pg_temp.reference_month(m date)
RETURNS TABLE(partner_id text, customer_id text, service_id text,
			  subscription_id uuid, overage_seconds bigint)
LANGUAGE sql AS $$
	WITH calls AS (
		SELECT u.customer_id, u.service_id, u.started_at, u.duration_s,
			   coalesce(sum(u.duration_s) OVER (
					PARTITION BY u.customer_id, u.service_id
					ORDER BY u.started_at, u.usage_id
					ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS used_before
		  FROM overage.usage u
		 WHERE u.started_at >= (m::timestamp AT TIME ZONE 'UTC')
		   AND u.started_at < ((m + interval '1 month')::timestamp AT TIME ZONE 'UTC')
	), rated AS (
		SELECT c.*,
			   c.duration_s - least(greatest(coalesce((
					SELECT sum(lq.quantity::bigint * ss.minutes_per_license * 60)
					  FROM overage.license_quantity lq
					  JOIN overage.subscription s USING (subscription_id)
					  JOIN overage.sku_service ss
						ON ss.product_id = s.product_id AND ss.sku_id = s.sku_id
					 WHERE s.customer_id = c.customer_id AND s.kind = 'license'
					   AND ss.service_id = c.service_id
					   AND lq.valid_from <= c.started_at
					   AND (lq.valid_to IS NULL OR lq.valid_to > c.started_at)), 0)
					- c.used_before, 0), c.duration_s) AS over,
			   (SELECT hp.subscription_id FROM overage.holder_period hp
				 WHERE hp.customer_id = c.customer_id AND hp.service_id = c.service_id
				   AND hp.valid_from <= c.started_at
				   AND (hp.valid_to IS NULL OR hp.valid_to > c.started_at)) AS holder
		  FROM calls c
	)
	SELECT s.partner_id, r.customer_id, r.service_id, r.holder, sum(r.over)::bigint
	  FROM rated r LEFT JOIN overage.subscription s ON s.subscription_id = r.holder
	 GROUP BY 1, 2, 3, 4
	HAVING sum(r.over) > 0
$$;

SELECT m AS month,
	   (SELECT count(*) FROM pg_temp.reference_month(m)) AS reference_lines,
	   (SELECT count(*) FROM (
			(SELECT partner_id, customer_id, service_id, subscription_id, overage_seconds
			   FROM overage.preview_month(m)
			 EXCEPT ALL SELECT * FROM pg_temp.reference_month(m))
			UNION ALL
			(SELECT * FROM pg_temp.reference_month(m)
			 EXCEPT ALL SELECT partner_id, customer_id, service_id, subscription_id, overage_seconds
			   FROM overage.preview_month(m))) d) AS differences
  FROM (VALUES ('2026-09-01'::date), ('2026-10-01'), ('2026-11-01')) v(m);

DROP EXTENSION overage;
