--
-- live_rating: rate_pending(), rating_status(), the rated state and the
-- alerts it raises (SPEC 1.2 "Live rating", "Budgets and alerts").  Every
-- figure is worked out by hand in the comments.  pool_status and
-- preview_month give the same figures before and after each rating: the
-- readers take the rated state plus the calls not rated yet.
--
CREATE EXTENSION overage;
\set SHOW_CONTEXT never
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';

-- 0.60 a minute is 0.01 a second: an amount is overage seconds / 100
INSERT INTO overage.service (service_id, name, unit_price) VALUES
	('CALL', 'Domestic calling', 0.60);
INSERT INTO overage.sku (product_id, sku_id, title, tags) VALUES
	('E5', '1', 'E5 with calling, 10 minutes', 'IncludeOverage');
INSERT INTO overage.sku_service VALUES ('E5', '1', 'CALL', 10);	-- 600 s a licence
INSERT INTO overage.partner VALUES ('P1', 'Partner one');
INSERT INTO overage.customer VALUES ('C1', 'Contoso', 'US');

-- P1 buys one licence on 10-01: pool 600 s; P1 holds the overage (first-in)
SELECT overage.purchase('P1', 'C1', 'E5', '1', 1, '2026-10-01 00:00Z') AS lic \gset

CREATE VIEW pg_temp.state AS
	SELECT month, calls, rated_calls, stale_groups FROM overage.rating_status();
CREATE VIEW pg_temp.pool AS
	SELECT pool_minutes, used_minutes, remaining_minutes, overage_minutes
	  FROM overage.pool_status('C1', 'CALL', '2026-10-31 23:00Z');
CREATE VIEW pg_temp.lines AS
	SELECT partner_id, overage_seconds, quantity, amount, currency
	  FROM overage.preview_month('2026-10-01');
CREATE VIEW pg_temp.alerts AS
	SELECT month, kind, partner_id, customer_id, service_id, threshold,
		   value, limit_value, crossed_at
	  FROM overage.alert ORDER BY alert_id;

------------------------------------------------------------------------------
-- 1. In order: 300 s on 10-02, 180 s on 10-03.  Included 480 s = 80 % of
--    600: the 10-03 call reaches the 80 % pool threshold (8 of 10 minutes).
------------------------------------------------------------------------------
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s) VALUES
	('C1', 'CALL', 'u1', '2026-10-02 10:00Z', 300),
	('C1', 'CALL', 'u2', '2026-10-03 10:00Z', 180);
SELECT * FROM pg_temp.state;		-- 2 calls, none rated
SELECT * FROM pg_temp.pool;			-- pool 10, used 8, remaining 2, overage 0
SELECT overage.rate_pending() AS rated;	-- 2
SELECT * FROM pg_temp.state;		-- 2 of 2 rated
SELECT * FROM pg_temp.pool;			-- the same figures, from the rated state
-- the state covers every call starting before 10-03 10:00:00.000001
SELECT month, customer_id, service_id, rated_to, calls, used_s, included_s,
	   overage_s, unassigned_s, reached
  FROM overage.rated_group;
SELECT * FROM pg_temp.alerts;		-- pool 80 %, P1, 8 of 10 minutes, at 10-03 10:00
SELECT overage.rate_pending() AS rated;	-- nothing pending: 0

------------------------------------------------------------------------------
-- 2. A budget for P1 and C1: 3.00 USD (300 overage seconds), warned at 50 %
--    (1.50) and 100 %.  Then, in order: 200 s on 10-05 (120 s included:
--    the pool is spent, 100 % reached; 80 s overage, 0.80), 100 s on 10-06
--    (overage 180 s: 1.80 reaches 50 %).
--    The budget was set after the group was rated, so the rating goes over
--    the group from the start again (4 calls), to find the call that
--    crossed each threshold whenever it was rated.
------------------------------------------------------------------------------
SELECT overage.set_budget('P1', 'C1', 3.00, '{100,50}');
SELECT partner_id, customer_id, amount, currency, thresholds FROM overage.budget;
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s) VALUES
	('C1', 'CALL', 'u1', '2026-10-05 10:00Z', 200),
	('C1', 'CALL', 'u2', '2026-10-06 10:00Z', 100);
SELECT * FROM pg_temp.state;		-- 4 calls, 2 rated (the state is current, 2 pending after it)
SELECT * FROM pg_temp.pool;			-- pool 10, used 13, remaining 0, overage 3
SELECT * FROM pg_temp.lines;		-- P1 180 s, 3.000000 min, 1.80
SELECT overage.rate_pending() AS rated;	-- 4
SELECT * FROM pg_temp.pool;			-- the same
SELECT * FROM pg_temp.lines;		-- the same
SELECT * FROM pg_temp.alerts;		-- + pool 100 % at 10-05 (10 of 10), budget 50 % at 10-06 (1.80 of 3.00)

------------------------------------------------------------------------------
-- 3. A late call: 60 s on 10-04, before the rated stretch ends.  The group
--    is stale; the readers rate it from the start:
--      10-02 300 incl | 10-03 180 incl | 10-04 60 incl (540) |
--      10-05 200: 60 incl, 140 over | 10-06 100 over      -> overage 240 s, 2.40
--    Re-rating crosses the same thresholds again: no alert twice.
------------------------------------------------------------------------------
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s) VALUES
	('C1', 'CALL', 'late', '2026-10-04 10:00Z', 60);
SELECT * FROM pg_temp.state;		-- 5 calls, 0 rated, 1 stale group
SELECT * FROM pg_temp.pool;			-- used 14, overage 4
SELECT * FROM pg_temp.lines;		-- P1 240 s, 4.000000 min, 2.40
SELECT overage.rate_pending() AS rated;	-- 5
SELECT * FROM pg_temp.state;		-- 5 of 5
SELECT * FROM pg_temp.lines;		-- the same
SELECT count(*) AS alerts FROM overage.alert;	-- still 3

------------------------------------------------------------------------------
-- 4. A dated change inside the rated stretch: 2 licences from 10-05 12:00
--    (pool 1200 s).  The 10-06 call is now included (700 of 1200 s):
--    overage 140 s, 1.40.  The budget alert of 1.80 stays: an alert is not
--    withdrawn when re-rating lowers the figure.
------------------------------------------------------------------------------
SELECT overage.set_quantity(:'lic', 2, '2026-10-05 12:00Z');
SELECT * FROM pg_temp.state;		-- 5 calls, 0 rated, 1 stale group
SELECT * FROM pg_temp.pool;			-- pool 20, used 14, remaining 8.333333, overage 2.333333
SELECT * FROM pg_temp.lines;		-- P1 140 s, 2.333333 min, 1.40
SELECT overage.rate_pending() AS rated;	-- 5
SELECT * FROM pg_temp.lines;		-- the same
SELECT count(*) AS alerts FROM overage.alert;	-- still 3

------------------------------------------------------------------------------
-- 5. In order again: 1000 s on 10-07: 500 s included (1200 - 700), 500 s
--    overage: 640 s, 6.40 reaches the budget (100 %).  The state is
--    extended: one call rated.
------------------------------------------------------------------------------
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s) VALUES
	('C1', 'CALL', 'u3', '2026-10-07 10:00Z', 1000);
SELECT * FROM pg_temp.state;		-- 6 calls, 5 rated, 0 stale
SELECT overage.rate_pending() AS rated;	-- 1
SELECT * FROM pg_temp.alerts;		-- + budget 100 % at 10-07 (6.40 of 3.00)
SELECT * FROM pg_temp.pool;			-- pool 20, used 30.666667, remaining 0, overage 10.666667

------------------------------------------------------------------------------
-- 5b. A budget set when nothing is pending: the next rating goes over the
--    customer's group from the start all the same (6 calls), to find the
--    call that crossed it before it existed.  P1's amount in time order:
--    1.40 at 10-05, 6.40 at 10-07.  5.00 warned at 120 %: 6.00 is reached
--    at 10-07 (6.40).  The alerts of the budget it replaces stay.
------------------------------------------------------------------------------
SELECT overage.set_budget('P1', 'C1', 5.00, '{120}');
SELECT overage.rate_pending() AS rated;	-- 6
SELECT * FROM pg_temp.alerts WHERE threshold = 120;	-- budget 120 % at 10-07 (6.40 of 5.00)
SELECT overage.rate_pending() AS rated;	-- nothing to do: 0
-- and the same through the close: 2.00 warned at 300 % (6.00), at 10-07
SELECT overage.set_budget('P1', 'C1', 2.00, '{300}');

------------------------------------------------------------------------------
-- 6. The close writes the lines of the rated state: P1 640 s, 6.40; it
--    rates the month first, raising the 300 % budget alert
------------------------------------------------------------------------------
SELECT overage.close_month('2026-10-01') AS lines;
SELECT * FROM pg_temp.alerts WHERE threshold = 300;	-- budget 300 % at 10-07 (6.40 of 2.00)
SELECT partner_id, customer_id, service_id, overage_seconds, quantity, unit_price, amount, currency
  FROM overage.charge;
SELECT * FROM pg_temp.state;		-- 6 of 6
-- a price change after the close marks the service's groups stale from
-- the start, in every month; a closed month's lines are final and its
-- state is never rated again, so it shows no stale group
UPDATE overage.service SET unit_price = 0.02 WHERE service_id = 'CALL';
SELECT cause, from_at FROM overage.rating_stale;
SELECT * FROM pg_temp.state;		-- 6 of 6, none stale
SELECT overage.rate_pending() AS rated;	-- takes the change in, nothing to rate: 0
SELECT count(*) AS marks FROM overage.rating_stale;

------------------------------------------------------------------------------
-- 7. What the rating's tables refuse, and who may rate
------------------------------------------------------------------------------
DELETE FROM overage.rated_group;
\echo :LAST_ERROR_SQLSTATE
INSERT INTO overage.rating_stale (from_at, cause) VALUES (now(), 'hand');
\echo :LAST_ERROR_SQLSTATE
TRUNCATE overage.usage_pending;
\echo :LAST_ERROR_SQLSTATE
CREATE ROLE regress_live_agent;
SELECT overage.add_agent('regress_live_agent', 'P1', 'global_admin');
GRANT USAGE ON SCHEMA overage TO regress_live_agent;
SET ROLE regress_live_agent;
SELECT overage.rate_pending();
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM overage.rating_status();
\echo :LAST_ERROR_SQLSTATE
-- an agent sees its partner's alerts
SELECT kind, threshold, crossed_at FROM overage.alert ORDER BY alert_id;
RESET ROLE;
SELECT overage.remove_agent('regress_live_agent');
DROP OWNED BY regress_live_agent;
DROP ROLE regress_live_agent;

DROP VIEW pg_temp.state, pg_temp.pool, pg_temp.lines, pg_temp.alerts;
DROP EXTENSION overage;
