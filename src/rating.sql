/*-------------------------------------------------------------------------
 *
 * src/rating.sql
 *	  Live rating (1.2): the rated state of every (customer, service,
 *	  month), what makes it out of date (calls not rated yet, dated changes
 *	  of licences, holders, prices and markets), rate_pending() and
 *	  rating_status().  The engine is src/live.c over src/rating.c; the
 *	  background worker that calls rate_pending() is src/worker.c.
 *
 * The rated state of a group covers every call that starts before its
 * rated_to.  It stays current while nothing changes before rated_to: a
 * call that arrives in order (at or after rated_to) only adds to the
 * unrated tail, which the readers (close_month, preview_month,
 * pool_status) rate on top of the state; a late call or a dated change
 * before rated_to makes the group stale from that instant, and the
 * readers rate it again from the start of its month.  So every figure is
 * the same whether and whenever rate_pending ran.
 *
 *-------------------------------------------------------------------------
 */

CREATE TABLE @extschema@.usage_pending (
	month		date NOT NULL,
	customer_id text[] NOT NULL,
	service_id	text[] NOT NULL,
	first_at	timestamptz[] NOT NULL,
	last_at		timestamptz[] NOT NULL,
	calls		bigint[] NOT NULL,
	seconds		bigint[] NOT NULL
);

-- A statement's arrays run to tens of kilobytes and live until the next
-- rating: stored out of line without compression (pglz made a statement of
-- 1,000 calls spend a few milliseconds compressing them)
ALTER TABLE @extschema@.usage_pending
	ALTER customer_id SET STORAGE EXTERNAL, ALTER service_id SET STORAGE EXTERNAL,
	ALTER first_at SET STORAGE EXTERNAL, ALTER last_at SET STORAGE EXTERNAL,
	ALTER calls SET STORAGE EXTERNAL, ALTER seconds SET STORAGE EXTERNAL;

COMMENT ON TABLE @extschema@.usage_pending IS
'Calls not rated yet, one row per ingest statement and month, written by the usage triggers (an insert, never an update, so concurrent loaders never wait for each other). The arrays are parallel, one element per (customer, service): its earliest and latest start, calls and seconds (negative for removed calls). rate_pending() (and close_month for its month) adds them to usage_month, rates them and deletes the row.';
COMMENT ON COLUMN @extschema@.usage_pending.first_at IS
'Earliest start of the statement''s calls of the (customer, service), removed calls included: before the group''s rated_to it makes the group stale';

CREATE TABLE @extschema@.rating_stale (
	customer_id text,
	service_id	text,
	from_at		timestamptz NOT NULL,
	cause		text NOT NULL
);

COMMENT ON TABLE @extschema@.rating_stale IS
'Dated changes that rating has not taken in yet: the groups of the customer (NULL: every customer) and service (NULL: every service) whose rated state reaches past from_at are stale from there. Written by the triggers on license_quantity, holder_period, service_price, service, sku_service and customer (and once by the update to 1.2, for the calls from before it); consumed by rate_pending()';
COMMENT ON COLUMN @extschema@.rating_stale.cause IS
'The table whose change it records (usage_month: the update to 1.2, whose groups of calls from before it have no rated state)';

/*
 * Calls from before 1.2 (ALTER EXTENSION overage UPDATE): their groups have
 * figures in usage_month but no rated state.  One dated change, every
 * group from the beginning of time, says so: the first rating rates them
 * in full, and the question "has a month anything to rate" never needs
 * to look for groups without a state (src/live.c, month_dirty).  A fresh
 * install has no figures and records nothing.
 */
INSERT INTO @extschema@.rating_stale (customer_id, service_id, from_at, cause)
SELECT NULL, NULL, '-infinity', 'usage_month'
 WHERE EXISTS (SELECT FROM @extschema@.usage_month);

CREATE TABLE @extschema@.rated_group (
	month		date NOT NULL,
	customer_id text NOT NULL,
	service_id	text NOT NULL,
	rated_to	timestamptz NOT NULL,
	calls		bigint NOT NULL,
	used_s		bigint NOT NULL,
	included_s	bigint NOT NULL,
	overage_s	bigint NOT NULL,
	unassigned_s bigint NOT NULL,
	reached		smallint NOT NULL,
	rated_at	timestamptz NOT NULL,
	PRIMARY KEY (month, customer_id, service_id)
);

COMMENT ON TABLE @extschema@.rated_group IS
'The rated state of a (customer, service, month): the attribution of every call of the month that starts before rated_to, written by rate_pending() and close_month. Its lines are overage.rated_line.';
COMMENT ON COLUMN @extschema@.rated_group.rated_to IS
'Every call of the group starting before this instant is rated (the last rated call''s start plus one microsecond)';
COMMENT ON COLUMN @extschema@.rated_group.included_s IS
'Seconds the pool covered (included_before of the next call)';
COMMENT ON COLUMN @extschema@.rated_group.reached IS
'Pool thresholds already reached in the month: 1 = 80 %, 2 = 100 % (each pool alert is raised once)';
COMMENT ON COLUMN @extschema@.rated_group.rated_at IS
'When it was rated (transaction time)';

CREATE TABLE @extschema@.rated_line (
	month		date NOT NULL,
	customer_id text NOT NULL,
	service_id	text NOT NULL,
	partner_id	text,
	subscription_id uuid,
	reseller_id text,
	unit_price	numeric NOT NULL,
	currency	text NOT NULL,
	overage_s	bigint NOT NULL CHECK (overage_s > 0),
	-- the charge line's minutes and amount (overage.charge), computed once
	-- per line as the rating writes it, so that close_month only copies
	quantity	numeric(18,6) NOT NULL
		GENERATED ALWAYS AS (round(overage_s / 60.0, 6)) STORED,
	amount		numeric(18,2) NOT NULL
		GENERATED ALWAYS AS (round(overage_s * unit_price / 60, 2)) STORED
);

CREATE INDEX rated_line_group ON @extschema@.rated_line (month, customer_id, service_id);

COMMENT ON TABLE @extschema@.rated_line IS
'Overage seconds of a rated state per (holder subscription, reseller, price), unassigned (partner NULL) per price: the charge lines the month would have if it closed at the group''s rated_to';
COMMENT ON COLUMN @extschema@.rated_line.quantity IS
'Minutes: overage_s / 60, 6 decimals (charge.quantity)';
COMMENT ON COLUMN @extschema@.rated_line.amount IS
'round(overage_s * unit_price / 60, 2), rounded once per line (charge.amount)';

SELECT pg_catalog.pg_extension_config_dump('@extschema@.usage_pending', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.rating_stale', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.rated_group', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.rated_line', '');

-- DEFINITIONS: re-runnable, replayed by every upgrade script (see Makefile)

------------------------------------------------------------------------------
-- What makes rated states stale: dated changes (C, src/live.c)
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION @extschema@.rating_mark_stale()
RETURNS trigger
AS 'MODULE_PATHNAME', 'rating_mark_stale'
LANGUAGE C SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION @extschema@.rating_mark_stale() IS
'Internal: AFTER STATEMENT trigger (transition tables) on the tables rating reads; records in rating_stale from which instant the changed rows outdate rated states';

-- transition tables allow one event per trigger
CREATE OR REPLACE TRIGGER license_quantity_stale_insert
	AFTER INSERT ON @extschema@.license_quantity REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.rating_mark_stale('license_quantity');
CREATE OR REPLACE TRIGGER license_quantity_stale_update
	AFTER UPDATE ON @extschema@.license_quantity
	REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.rating_mark_stale('license_quantity');
CREATE OR REPLACE TRIGGER license_quantity_stale_delete
	AFTER DELETE ON @extschema@.license_quantity REFERENCING OLD TABLE AS old_rows
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.rating_mark_stale('license_quantity');

CREATE OR REPLACE TRIGGER holder_period_stale_insert
	AFTER INSERT ON @extschema@.holder_period REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.rating_mark_stale('holder_period');
CREATE OR REPLACE TRIGGER holder_period_stale_update
	AFTER UPDATE ON @extschema@.holder_period
	REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.rating_mark_stale('holder_period');
CREATE OR REPLACE TRIGGER holder_period_stale_delete
	AFTER DELETE ON @extschema@.holder_period REFERENCING OLD TABLE AS old_rows
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.rating_mark_stale('holder_period');

CREATE OR REPLACE TRIGGER service_price_stale_insert
	AFTER INSERT ON @extschema@.service_price REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.rating_mark_stale('service_price');
CREATE OR REPLACE TRIGGER service_price_stale_update
	AFTER UPDATE ON @extschema@.service_price
	REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.rating_mark_stale('service_price');
CREATE OR REPLACE TRIGGER service_price_stale_delete
	AFTER DELETE ON @extschema@.service_price REFERENCING OLD TABLE AS old_rows
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.rating_mark_stale('service_price');

CREATE OR REPLACE TRIGGER service_stale_update
	AFTER UPDATE ON @extschema@.service
	REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.rating_mark_stale('service');

CREATE OR REPLACE TRIGGER sku_service_stale_insert
	AFTER INSERT ON @extschema@.sku_service REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.rating_mark_stale('sku_service');
CREATE OR REPLACE TRIGGER sku_service_stale_update
	AFTER UPDATE ON @extschema@.sku_service
	REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.rating_mark_stale('sku_service');
CREATE OR REPLACE TRIGGER sku_service_stale_delete
	AFTER DELETE ON @extschema@.sku_service REFERENCING OLD TABLE AS old_rows
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.rating_mark_stale('sku_service');

CREATE OR REPLACE TRIGGER customer_stale_update
	AFTER UPDATE ON @extschema@.customer
	REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.rating_mark_stale('customer');

-- the rating's own tables: written by the engine only
CREATE OR REPLACE TRIGGER usage_pending_guard
	BEFORE INSERT OR UPDATE OR DELETE ON @extschema@.usage_pending
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.history_guard(
		'Its rows are the calls not rated yet, kept by the usage triggers and rate_pending().',
		'Write overage.usage instead; run overage.rate_pending() to rate.');
CREATE OR REPLACE TRIGGER rated_group_guard
	BEFORE INSERT OR UPDATE OR DELETE ON @extschema@.rated_group
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.history_guard(
		'Its rows are the rated state, kept by rate_pending() and close_month.',
		'Run overage.rate_pending().');
CREATE OR REPLACE TRIGGER rated_line_guard
	BEFORE INSERT OR UPDATE OR DELETE ON @extschema@.rated_line
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.history_guard(
		'Its rows are the rated state, kept by rate_pending() and close_month.',
		'Run overage.rate_pending().');
CREATE OR REPLACE TRIGGER rating_stale_guard
	BEFORE INSERT OR UPDATE OR DELETE ON @extschema@.rating_stale
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.history_guard(
		'Its rows are the dated changes rating has not taken in, kept by triggers and rate_pending().',
		'Run overage.rate_pending().');
CREATE OR REPLACE TRIGGER usage_pending_no_truncate
	BEFORE TRUNCATE ON @extschema@.usage_pending
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.history_guard();
CREATE OR REPLACE TRIGGER rated_group_no_truncate
	BEFORE TRUNCATE ON @extschema@.rated_group
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.history_guard();
CREATE OR REPLACE TRIGGER rated_line_no_truncate
	BEFORE TRUNCATE ON @extschema@.rated_line
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.history_guard();
CREATE OR REPLACE TRIGGER rating_stale_no_truncate
	BEFORE TRUNCATE ON @extschema@.rating_stale
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.history_guard();

------------------------------------------------------------------------------
-- Rating
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION @extschema@._rate_pending(month date)
RETURNS bigint
AS 'MODULE_PATHNAME', 'rate_pending'
LANGUAGE C
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION @extschema@._rate_pending(date) IS
'Internal: brings the rated state of the calendar month (UTC) of the date up to date (NULL: of every open month, taking in every dated change), raising the alerts it crosses; returns the number of calls it (re)rated. One at a time (a transaction-level advisory lock)';

CREATE OR REPLACE FUNCTION @extschema@._rate_month_fresh(month date)
RETURNS TABLE(customer_id text, service_id text, partner_id text,
			  subscription_id uuid, overage_seconds bigint,
			  unit_price numeric, currency text, reseller_id text)
AS 'MODULE_PATHNAME', 'rate_month_fresh'
LANGUAGE C STRICT
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION @extschema@._rate_month_fresh(date) IS
'Internal: the lines of _rate_month, every group rated from the start of the month in one pass, whatever rated state is stored (verify() compares the two)';

CREATE OR REPLACE FUNCTION @extschema@.rate_pending()
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM @extschema@._authorize('operate', NULL);
	RETURN @extschema@._rate_pending(NULL);
END
$$;

COMMENT ON FUNCTION @extschema@.rate_pending() IS
'Rates every call not rated yet and re-rates the groups that late calls or dated changes made stale, in every open month; raises the pool and budget alerts the rating crosses; returns the number of calls it (re)rated. Safe at any time, concurrently with anything (two runs take turns). The background worker (overage.rate_interval) calls it. Operator only';

CREATE OR REPLACE FUNCTION @extschema@.rating_status()
RETURNS TABLE(month date, calls bigint, rated_calls bigint,
			  stale_groups bigint, rated_at timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM @extschema@._authorize('operate', NULL);
	IF @extschema@._distributed() THEN
		RAISE EXCEPTION 'live rating is not available on a distributed cluster'
			USING ERRCODE = 'feature_not_supported',
				  DETAIL = 'After overage.distribute() every reading and close_month rate the month from its calls; there is no rated state to report on.';
	END IF;
	RETURN QUERY
	WITH pending AS (
		SELECT p.month, u.c, u.s, min(u.f) AS first_at, sum(u.n) AS calls
		  FROM @extschema@.usage_pending p,
			   unnest(p.customer_id, p.service_id, p.first_at, p.calls) AS u(c, s, f, n)
		 GROUP BY 1, 2, 3
	), groups AS (
		SELECT coalesce(f.month, p.month, r.month) AS month,
			   coalesce(f.calls, 0) + coalesce(p.calls, 0) AS calls,
			   r.calls AS rated_calls, r.rated_at,
			   r.month IS NOT NULL AS rated,
			   -- the state outdated by a late call or a dated change?  Not
			   -- in a closed month: its lines are final and its state is
			   -- never rated again (rate_pending drops the mark)
			   r.month IS NOT NULL AND
			   r.month NOT IN (SELECT b.month FROM @extschema@.billing_month b
								WHERE b.closed_at IS NOT NULL) AND
			   (coalesce(p.first_at < r.rated_to, false) OR EXISTS (
					SELECT 1 FROM @extschema@.rating_stale x
					 WHERE x.from_at < r.rated_to
					   AND (x.customer_id IS NULL OR x.customer_id = r.customer_id)
					   AND (x.service_id IS NULL OR x.service_id = r.service_id))) AS stale
		  FROM @extschema@.usage_month f
		  FULL JOIN pending p
			ON p.month = f.month AND p.c = f.customer_id AND p.s = f.service_id
		  FULL JOIN @extschema@.rated_group r
			ON r.month = coalesce(f.month, p.month)
		   AND r.customer_id = coalesce(f.customer_id, p.c)
		   AND r.service_id = coalesce(f.service_id, p.s)
	)
	SELECT g.month, sum(g.calls)::bigint,
		   coalesce(sum(g.rated_calls) FILTER (WHERE g.rated AND NOT g.stale), 0)::bigint,
		   count(*) FILTER (WHERE g.stale),
		   max(g.rated_at)
	  FROM groups g
	 GROUP BY g.month
	 ORDER BY g.month;
END
$$;

COMMENT ON FUNCTION @extschema@.rating_status() IS
'Per calendar month with calls: the calls, how many of them are rated with a current rated state, the groups (customer, service) whose rated state a late call or a dated change made stale (none in a closed month, whose lines are final), and when the month was last rated. Operator only';
