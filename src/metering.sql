/*-------------------------------------------------------------------------
 *
 * src/metering.sql
 *	  Calls, the months they fall in, the running figures per (customer,
 *	  service, month), the charge lines of closed months; the rating of a
 *	  month (src/rating.c) behind pool_status, preview_month and
 *	  close_month; the reconciliation file.  Ingest and the month locks are
 *	  src/usage.c and src/month.c; the immutability of closed months'
 *	  lines is src/charge_guard.c.
 *
 *-------------------------------------------------------------------------
 */

CREATE TABLE @extschema@.billing_month (
	month		date PRIMARY KEY
		CHECK (month = date_trunc('month', month)::date),
	closed_at	timestamptz,
	closed_by	name,
	lines		integer
);

COMMENT ON TABLE @extschema@.billing_month IS
'Calendar months (UTC) that have usage, licence or holder changes, or were closed. The row is the lock that orders ingest and dated changes against close: ingest and the licence and holder triggers lock the months they write in FOR SHARE and refuse closed ones; close_month locks the month FOR UPDATE, so it waits for in-flight ingests and later ingests see it closed.';
COMMENT ON COLUMN @extschema@.billing_month.month IS
'First day of the calendar month (UTC)';
COMMENT ON COLUMN @extschema@.billing_month.closed_at IS
'When close_month closed the month (transaction time); NULL while open';
COMMENT ON COLUMN @extschema@.billing_month.closed_by IS
'Database role that ran close_month';
COMMENT ON COLUMN @extschema@.billing_month.lines IS
'Number of charge lines close_month wrote';

CREATE TABLE @extschema@.usage (
	usage_id	bigint GENERATED ALWAYS AS IDENTITY,
	customer_id	text NOT NULL,
	service_id	text NOT NULL,
	user_id		text NOT NULL,
	started_at	timestamptz NOT NULL,
	duration_s	integer NOT NULL CHECK (duration_s > 0)
);

COMMENT ON TABLE @extschema@.usage IS
'Calls: INSERT or COPY (customer_id, service_id, user_id, started_at, duration_s), by the operator only (trigger usage_authorize; the DBA grants INSERT to the ingest role). Statement-level C triggers validate the statement''s rows (known customer and service, duration at most 86400 s, started_at finite and at most one day after now(), month not closed) and record them in overage.usage_pending for the rating; a refused statement writes nothing. Not partitioned; see README.';
COMMENT ON COLUMN @extschema@.usage.usage_id IS
'Arrival order; breaks ties between calls starting at the same instant';
COMMENT ON COLUMN @extschema@.usage.user_id IS
'The customer''s user who made the call (kept for the record; rating does not use it)';
COMMENT ON COLUMN @extschema@.usage.started_at IS
'Start of the call; the call belongs to the calendar month (UTC) of this instant';
COMMENT ON COLUMN @extschema@.usage.duration_s IS
'Length of the call in seconds, 1 to 86400';

-- The one index: rating reads the calls of a month group by group in order
-- of (started_at, usage_id); the leading month expression turns "this
-- month" into an equality, so a month is one contiguous range of the index
-- however many months the table holds.  INCLUDE makes it index-only.
CREATE INDEX usage_rating ON @extschema@.usage
	((date_trunc('month', started_at AT TIME ZONE 'UTC')), customer_id,
	 service_id, started_at, usage_id) INCLUDE (duration_s);

COMMENT ON INDEX @extschema@.usage_rating IS
'The calls of a month in rating order, index-only: read by preview_month/close_month (the whole month) and pool_status (one group)';

CREATE TABLE @extschema@.usage_month (
	customer_id	text NOT NULL,
	service_id	text NOT NULL,
	month		date NOT NULL,
	calls		bigint NOT NULL,
	seconds		bigint NOT NULL,
	first_at	timestamptz NOT NULL,
	last_at		timestamptz NOT NULL,
	PRIMARY KEY (month, customer_id, service_id)
) WITH (fillfactor = 50);

COMMENT ON TABLE @extschema@.usage_month IS
'Figures per (customer, service, month) of the calls taken in by the rating: number of calls and seconds. The calls not rated yet are in overage.usage_pending; rate_pending() and close_month add them here (1.2; before, the usage triggers kept this table themselves).';
COMMENT ON COLUMN @extschema@.usage_month.calls IS
'Number of calls of the group in the month';
COMMENT ON COLUMN @extschema@.usage_month.seconds IS
'Sum of their duration_s';
COMMENT ON COLUMN @extschema@.usage_month.first_at IS
'No call of the group started before this instant (a bound: deletes do not narrow it)';
COMMENT ON COLUMN @extschema@.usage_month.last_at IS
'No call of the group started after this instant (a bound: deletes do not narrow it)';

CREATE TABLE @extschema@.charge (
	month		date NOT NULL,
	partner_id	text,
	customer_id	text NOT NULL,
	service_id	text NOT NULL,
	subscription_id uuid,
	overage_seconds bigint NOT NULL CHECK (overage_seconds > 0),
	quantity	numeric(18,6) NOT NULL,
	unit_price	numeric NOT NULL,
	amount		numeric(18,2) NOT NULL,
	currency	text NOT NULL,
	reseller_id	text,
	CONSTRAINT charge_unassigned CHECK ((partner_id IS NULL) = (subscription_id IS NULL))
);

CREATE INDEX charge_month_partner ON @extschema@.charge (month, partner_id);

COMMENT ON TABLE @extschema@.charge IS
'Charge lines of closed months, written by close_month (no foreign keys: the lines are derived from rows that cannot be deleted, and a per-row check would cost the close a round trip per line): one per (overage subscription, reseller, customer, service, unit price) and one unassigned line per (customer, service, unit price) for overage while the holder was None or never assigned. Immutable once the month is closed.';
COMMENT ON COLUMN @extschema@.charge.partner_id IS
'Partner billed; NULL on unassigned lines (reported, never billed)';
COMMENT ON COLUMN @extschema@.charge.subscription_id IS
'Subscription that held the overage when the seconds were used; NULL on unassigned lines';
COMMENT ON COLUMN @extschema@.charge.reseller_id IS
'The indirect reseller on whose behalf the holder held the overage (1.2; Tier2MpnId of the reconciliation file); NULL for a direct partner and on unassigned lines';
COMMENT ON COLUMN @extschema@.charge.quantity IS
'Minutes: overage_seconds / 60, 6 decimals';
COMMENT ON COLUMN @extschema@.charge.amount IS
'round(overage_seconds * unit_price / 60, 2), rounded once per line';

SELECT pg_catalog.pg_extension_config_dump('@extschema@.billing_month', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.usage', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.usage_usage_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.usage_month', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.charge', '');

-- DEFINITIONS: re-runnable, replayed by every upgrade script (see Makefile)

CREATE OR REPLACE FUNCTION @extschema@.usage_ingest()
RETURNS trigger
AS 'MODULE_PATHNAME', 'usage_ingest'
LANGUAGE C SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

/*
 * Ingest is a plain INSERT or COPY into overage.usage by the operator: a
 * superuser, the owner, or an operator-mapped role the DBA grants INSERT
 * (README).  The statement trigger reads customer and service and writes
 * billing_month and usage_month, none of which such a role may touch, so
 * it runs as the owner; it names every object with its schema.
 */
COMMENT ON FUNCTION @extschema@.usage_ingest() IS
'Internal: AFTER STATEMENT trigger on overage.usage (transition tables): validates the statement''s rows, locks their months and keeps usage_month';

CREATE OR REPLACE TRIGGER usage_insert
	AFTER INSERT ON @extschema@.usage
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.usage_ingest();
CREATE OR REPLACE TRIGGER usage_update
	AFTER UPDATE ON @extschema@.usage
	REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.usage_ingest();
CREATE OR REPLACE TRIGGER usage_delete
	AFTER DELETE ON @extschema@.usage
	REFERENCING OLD TABLE AS old_rows
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.usage_ingest();
CREATE OR REPLACE TRIGGER usage_no_truncate
	BEFORE TRUNCATE ON @extschema@.usage
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.history_guard();

CREATE OR REPLACE TRIGGER usage_month_guard
	BEFORE INSERT OR UPDATE OR DELETE ON @extschema@.usage_month
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.history_guard(
		'Its rows are running figures of overage.usage, kept by the usage triggers.',
		'Write overage.usage instead; the figures follow.');
CREATE OR REPLACE TRIGGER usage_month_no_truncate
	BEFORE TRUNCATE ON @extschema@.usage_month
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.history_guard();

CREATE OR REPLACE FUNCTION @extschema@.charge_guard()
RETURNS trigger
AS 'MODULE_PATHNAME', 'charge_guard'
LANGUAGE C
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION @extschema@.charge_guard() IS
'Internal: refuses charge lines inserted into, or changed or deleted in, a closed month, and TRUNCATE';

CREATE OR REPLACE TRIGGER charge_insert
	AFTER INSERT ON @extschema@.charge
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.charge_guard();
CREATE OR REPLACE TRIGGER charge_change
	BEFORE UPDATE OR DELETE ON @extschema@.charge
	FOR EACH ROW EXECUTE FUNCTION @extschema@.charge_guard();
CREATE OR REPLACE TRIGGER charge_no_truncate
	BEFORE TRUNCATE ON @extschema@.charge
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.charge_guard();

-- usage: no privileges for PUBLIC; the DBA grants INSERT (and SELECT, if
-- wanted) to the role that ingests.  Not row-level security: COPY FROM is
-- not supported under it, and applications load calls with COPY.  Instead
-- a statement-level trigger makes the writer's being the operator a
-- condition too, so INSERT granted to an agent by mistake writes nothing
-- and the refusal names the rule.
CREATE OR REPLACE FUNCTION @extschema@._usage_authorize()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM @extschema@._authorize('operate', NULL);
	RETURN NULL;
END
$$;

COMMENT ON FUNCTION @extschema@._usage_authorize() IS
'Internal: BEFORE STATEMENT trigger on overage.usage; only the operator ingests, changes or removes calls (42501)';

CREATE OR REPLACE TRIGGER usage_authorize
	BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.usage
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@._usage_authorize();

------------------------------------------------------------------------------
-- Rating (C, src/rating.c) and the public functions over it
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION @extschema@._rate_month(month date)
RETURNS TABLE(customer_id text, service_id text, partner_id text,
			  subscription_id uuid, overage_seconds bigint,
			  unit_price numeric, currency text, reseller_id text)
AS 'MODULE_PATHNAME', 'rate_month'
LANGUAGE C STRICT
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION @extschema@._rate_month(date) IS
'Internal: overage seconds of the calendar month (UTC) holding the date, per (customer, service, holder subscription, reseller, price) and unassigned (partner NULL) per price, by the attribution engine; the price of a call is the service_price of its customer''s market in effect at its start, else the service''s own';

CREATE OR REPLACE FUNCTION @extschema@._rate_status(customer_id text, service_id text,
													at timestamptz,
													OUT month date, OUT pool_s bigint,
													OUT used_s bigint, OUT overage_s bigint,
													OUT unassigned_s bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'rate_status'
LANGUAGE C STRICT
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION @extschema@._rate_status(text, text, timestamptz) IS
'Internal: pool_status in seconds (included seconds = used_s - overage_s)';

/*
 * On a Citus cluster the month is rated per shard, on the workers
 * (README "Scaling out"): every shard's node rates the customers of the
 * shard from its co-located tables (_rate_shard), all shards at once
 * (run_command_on_shards runs the commands in parallel, each on a
 * connection of its own), and the coordinator gathers the lines.  Those
 * connections read what is committed: the callers use it only when their
 * transaction has written nothing before (else _rate_month, through the
 * coordinator, sees the transaction's own writes).
 */
CREATE OR REPLACE FUNCTION @extschema@._rate_shard(month date, shard regclass)
RETURNS TABLE(customer_id text, service_id text, partner_id text,
			  subscription_id uuid, overage_seconds bigint,
			  unit_price numeric, currency text, reseller_id text)
AS 'MODULE_PATHNAME', 'rate_shard'
LANGUAGE C STRICT
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION @extschema@._rate_shard(date, regclass) IS
'Internal, on a Citus cluster: the lines of _rate_month for the customers of one shard, rated on its node from the shard''s co-located tables; shard is the node''s placement of overage.usage (as run_command_on_shards names it)';

CREATE OR REPLACE FUNCTION @extschema@._rate_month_shards(month date)
RETURNS TABLE(customer_id text, service_id text, partner_id text,
			  subscription_id uuid, overage_seconds bigint,
			  unit_price numeric, currency text, reseller_id text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	shard	bigint;
	ok		boolean;
	answer	text;
	shards	integer;
	rated	integer := 0;
	citus	CONSTANT name := 'pg_catalog'::name;
BEGIN
	IF NOT @extschema@._distributed() THEN
		RAISE EXCEPTION 'overage is not distributed in this database'
			USING ERRCODE = 'feature_not_supported',
				  HINT = 'On one node the month is rated by preview_month and close_month.';
	END IF;
	-- (EXECUTE: run_command_on_shards and pg_dist_shard are Citus', absent
	-- on one node)
	FOR shard, ok, answer IN EXECUTE
		pg_catalog.format('SELECT s.shardid, s.success, s.result'
						  '  FROM %I.run_command_on_shards(''@extschema@.usage'', $1) s', citus)
		USING pg_catalog.format('SELECT coalesce(pg_catalog.json_agg(l), ''[]'')'
								' FROM @extschema@._rate_shard(%L, %%L) l',
								_rate_month_shards.month)
	LOOP
		IF NOT ok THEN
			RAISE EXCEPTION 'the rating of shard % of overage.usage failed', shard
				USING ERRCODE = CASE WHEN answer ~* 'connect' THEN 'connection_failure'
									 ELSE 'external_routine_exception' END,
					  DETAIL = answer,
					  HINT = 'Nothing was written.  Check the node that holds the shard, then run it again.';
		END IF;
		RETURN QUERY
			SELECT * FROM pg_catalog.json_to_recordset(answer::json)
				AS x(customer_id text, service_id text, partner_id text,
					 subscription_id uuid, overage_seconds bigint,
					 unit_price numeric, currency text, reseller_id text);
		rated := rated + 1;
	END LOOP;
	-- run_command_on_shards leaves out a shard without an active placement
	EXECUTE pg_catalog.format('SELECT count(*) FROM %I.pg_dist_shard s'
							  ' WHERE s.logicalrelid = ''@extschema@.usage''::pg_catalog.regclass', citus)
		INTO shards;
	IF rated <> shards THEN
		RAISE EXCEPTION 'only % of the % shards of overage.usage were rated', rated, shards
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = 'A shard without an active placement was left out.',
				  HINT = 'Nothing was written.  Check pg_dist_placement, then run it again.';
	END IF;
END
$$;

COMMENT ON FUNCTION @extschema@._rate_month_shards(date) IS
'Internal, on a Citus cluster: the lines of _rate_month, every shard rated on its node by _rate_shard, all at once (run_command_on_shards), gathered here. Reads what is committed';

CREATE OR REPLACE FUNCTION @extschema@._month_lines(month date, on_shards boolean DEFAULT false)
RETURNS SETOF @extschema@.charge
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT m.m, r.partner_id, r.customer_id, r.service_id, r.subscription_id,
		   r.overage_seconds,
		   round(r.overage_seconds / 60.0, 6)::numeric(18,6),
		   r.unit_price,
		   round(r.overage_seconds * r.unit_price / 60, 2)::numeric(18,2),
		   r.currency, r.reseller_id
	  FROM (SELECT date_trunc('month', _month_lines.month::timestamp)::date) AS m(m),
		   LATERAL (SELECT * FROM @extschema@._rate_month(m.m) WHERE NOT _month_lines.on_shards
					UNION ALL
					SELECT * FROM @extschema@._rate_month_shards(m.m) WHERE _month_lines.on_shards) r
	 ORDER BY r.customer_id, r.service_id, r.partner_id NULLS LAST,
			  r.subscription_id, r.reseller_id NULLS FIRST, r.unit_price, r.currency
$$;

COMMENT ON FUNCTION @extschema@._month_lines(date, boolean) IS
'Internal: the charge lines of the calendar month (UTC) of the date, computed from the current data (rated states and the calls not rated yet); on_shards: on a Citus cluster, rated per shard on the workers (_rate_month_shards); behind preview_month and close_month';

CREATE OR REPLACE FUNCTION @extschema@.pool_status(customer_id text, service_id text,
												   at timestamptz DEFAULT pg_catalog.now())
RETURNS TABLE(month date, pool_minutes numeric, used_minutes numeric,
			  remaining_minutes numeric, overage_minutes numeric,
			  unassigned_minutes numeric)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
	PERFORM @extschema@._require_finite('at', pool_status.at);
	PERFORM @extschema@._require('customer_id', pool_status.customer_id);
	PERFORM @extschema@._authorize_customer('read', pool_status.customer_id);

	PERFORM @extschema@._require('service_id', pool_status.service_id);
	PERFORM @extschema@._require('at', pool_status.at);
	PERFORM @extschema@._require_exists('customer', pool_status.customer_id);
	PERFORM @extschema@._require_exists('service', pool_status.service_id);

	RETURN QUERY
		SELECT r.month,
			   round(r.pool_s / 60.0, 6),
			   round(r.used_s / 60.0, 6),
			   -- the pool less the included seconds: overage never uses it up
			   round(greatest(r.pool_s - (r.used_s - r.overage_s), 0) / 60.0, 6),
			   round(r.overage_s / 60.0, 6),
			   round(r.unassigned_s / 60.0, 6)
		  FROM @extschema@._rate_status(pool_status.customer_id,
										pool_status.service_id,
										pool_status.at) r;
END
$$;

COMMENT ON FUNCTION @extschema@.pool_status(text, text, timestamptz) IS
'Live pool of a (customer, service) as of instant at, over the calls of at''s calendar month (UTC) that started before at: pool at at, minutes used, remaining = greatest(pool - included, 0) where included is what the pool covered of those calls (overage never uses up the pool), overage minutes of those calls (assigned and unassigned) and the unassigned part. Minutes are seconds / 60 rounded to 6 decimals. Any agent of a partner that bought for the customer; operator';

CREATE OR REPLACE FUNCTION @extschema@._shards_may_rate()
RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	citus	CONSTANT name := 'pg_catalog'::name;
	may		boolean := false;
BEGIN
	IF @extschema@._distributed() THEN
		/*
		 * On a Citus cluster the month is rated per shard on the workers,
		 * on connections of their own that read what is committed: only
		 * when this transaction has written nothing yet, here or on a
		 * worker (else on the coordinator, through Citus, which sees it).
		 * EXECUTE: the function is Citus', absent on one node.
		 */
		EXECUTE pg_catalog.format('SELECT pg_catalog.pg_current_xact_id_if_assigned() IS NULL'
								  ' AND (%I.get_current_transaction_id()).transaction_number = 0',
								  citus)
			INTO may;
	END IF;
	RETURN may;
END
$$;

COMMENT ON FUNCTION @extschema@._shards_may_rate() IS
'Internal (1.2): may preview_month and close_month rate the month per shard on the workers (_rate_month_shards)? Only on a Citus cluster, and only while the calling transaction has written nothing, here or on a worker: the shards are rated on connections of their own, which see what is committed';

CREATE OR REPLACE FUNCTION @extschema@.preview_month(month date)
RETURNS SETOF @extschema@.charge
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	on_shards	boolean := @extschema@._shards_may_rate();
BEGIN
	PERFORM @extschema@._authorize('operate', NULL);
	PERFORM @extschema@._require('month', preview_month.month);
	RETURN QUERY SELECT * FROM @extschema@._month_lines(preview_month.month, on_shards);
END
$$;

COMMENT ON FUNCTION @extschema@.preview_month(date) IS
'The charge lines close_month would write for the calendar month (UTC) of the date, computed from the current data; writes nothing. Operator only';

CREATE OR REPLACE FUNCTION @extschema@.close_month(month date)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	m		date;
	closed	timestamptz;
	n		integer;
	-- before anything is written: see _shards_may_rate
	on_shards boolean := @extschema@._shards_may_rate();
BEGIN
	PERFORM @extschema@._authorize('operate', NULL);
	PERFORM @extschema@._require('month', close_month.month);
	m := date_trunc('month', close_month.month::timestamp)::date;

	/*
	 * The month row lock orders close against ingest (src/month.c): after
	 * FOR UPDATE, in-flight ingests of the month have committed or rolled
	 * back, later ones will see the month closed, and each statement below
	 * takes a fresh snapshot -- which only READ COMMITTED gives.  (A
	 * function cannot change the isolation level; it reads the caller's.)
	 */
	IF current_setting('transaction_isolation') <> 'read committed' THEN
		RAISE EXCEPTION 'close_month must run at isolation level READ COMMITTED'
			USING ERRCODE = 'invalid_transaction_state',
				  DETAIL = 'It waits for the month''s in-flight usage and must then read it with a fresh snapshot.';
	END IF;

	INSERT INTO @extschema@.billing_month (month) VALUES (m)
		ON CONFLICT (month) DO NOTHING;
	IF @extschema@._distributed() THEN
		/*
		 * On a Citus cluster the ingests on the workers lock the month in
		 * their node's placement of billing_month (src/month.c): a write
		 * of the row locks it in every placement, so this waits for them.
		 */
		UPDATE @extschema@.billing_month b SET lines = b.lines WHERE b.month = m;
	END IF;
	SELECT b.closed_at INTO closed FROM @extschema@.billing_month b
	 WHERE b.month = m FOR UPDATE;
	IF closed IS NOT NULL THEN
		RAISE EXCEPTION 'month % is already closed', to_char(m, 'YYYY-MM-DD')
			USING ERRCODE = 'OV006',
				  DETAIL = 'Its charge lines are final; billing_month.closed_at tells when it was closed.';
	END IF;

	/*
	 * The month's rated state brought up to date (live.c): its pending calls
	 * taken in, the dated changes its snapshot sees applied, the alerts they
	 * cross raised.  Its rated lines are then the month's lines: usage and
	 * licence or holder changes dated in the month wait for our lock, so
	 * only a price or market change can commit in between, as if after the
	 * close.  When the rating ran before (the worker), no call is read.
	 */
	IF @extschema@._distributed() THEN
		/*
		 * No live rating on a cluster (README "Scaling out"): the month is
		 * rated from its calls, as preview_month does.  The lock above
		 * made every ingest of the month commit or wait, so what the
		 * shards' connections read is the month this transaction closes.
		 */
		INSERT INTO @extschema@.charge
		SELECT * FROM @extschema@._month_lines(m, on_shards);
		GET DIAGNOSTICS n = ROW_COUNT;
		UPDATE @extschema@.billing_month b
		   SET closed_at = now(), closed_by = @extschema@._caller(), lines = n
		 WHERE b.month = m;
		RETURN n;
	END IF;
	PERFORM @extschema@._rate_pending(m);
	/*
	 * A copy: the rated lines carry their quantity and amount.  In the
	 * order of the index they are read by, a customer's lines together;
	 * no further sort (readers order what they show).
	 */
	INSERT INTO @extschema@.charge
		(month, partner_id, customer_id, service_id, subscription_id,
		 overage_seconds, quantity, unit_price, amount, currency, reseller_id)
	SELECT l.month, l.partner_id, l.customer_id, l.service_id, l.subscription_id,
		   l.overage_s, l.quantity, l.unit_price, l.amount, l.currency, l.reseller_id
	  FROM @extschema@.rated_line l
	 WHERE l.month = m
	 ORDER BY l.customer_id, l.service_id;
	GET DIAGNOSTICS n = ROW_COUNT;

	-- closed_by is the caller, not the owner this function runs as
	UPDATE @extschema@.billing_month b
	   SET closed_at = now(), closed_by = @extschema@._caller(), lines = n
	 WHERE b.month = m;
	RETURN n;
END
$$;

COMMENT ON FUNCTION @extschema@.close_month(date) IS
'Closes the calendar month (UTC) of the date: writes its charge lines and marks it closed, all or nothing. Returns the number of lines. A closed month is final (OV006 on a second close, on changes of its lines, and on usage, licence or holder changes dated in it). Operator only';

CREATE OR REPLACE FUNCTION @extschema@.reconciliation(partner_id text, month date)
RETURNS TABLE("PartnerId" text, "PartnerName" text, "CustomerId" text,
			  "CustomerName" text, "CustomerDomainName" text,
			  "CustomerCountry" text, "MpnId" text, "Tier2MpnId" text,
			  "InvoiceNumber" text, "ProductId" text, "SkuId" text,
			  "AvailabilityId" text, "SkuName" text, "ProductName" text,
			  "PublisherName" text, "PublisherId" text,
			  "SubscriptionDescription" text, "SubscriptionId" uuid,
			  "ChargeStartDate" date, "ChargeEndDate" date, "UsageDate" date,
			  "MeterType" text, "MeterCategory" text, "MeterId" text,
			  "MeterSubCategory" text, "MeterName" text, "MeterRegion" text,
			  "Unit" text, "ResourceLocation" text, "ConsumedService" text,
			  "ResourceGroup" text, "ResourceURI" text, "ChargeType" text,
			  "UnitPrice" numeric, "Quantity" numeric(18,6), "UnitType" text,
			  "BillingPreTaxTotal" numeric(18,2), "BillingCurrency" text,
			  "PricingPreTaxTotal" numeric(18,2), "PricingCurrency" text,
			  "ServiceInfo1" text, "ServiceInfo2" text, "Tags" text,
			  "AdditionalInfo" text, "EffectiveUnitPrice" numeric,
			  "PCToBCExchangeRate" numeric, "PCToBCExchangeRateDate" date,
			  "EntitlementId" uuid, "EntitlementDescription" text,
			  "PartnerEarnedCreditPercentage" numeric,
			  "CreditPercentage" numeric, "CreditType" text,
			  "BenefitOrderId" text, "BenefitId" text, "BenefitType" text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	m		date;
	closed	timestamptz;
BEGIN
	PERFORM @extschema@._require('partner_id', reconciliation.partner_id);
	PERFORM @extschema@._authorize('billing', reconciliation.partner_id);

	PERFORM @extschema@._require('month', reconciliation.month);
	PERFORM @extschema@._require_exists('partner', reconciliation.partner_id);
	m := date_trunc('month', reconciliation.month::timestamp)::date;

	SELECT b.closed_at INTO closed FROM @extschema@.billing_month b
	 WHERE b.month = m;
	IF closed IS NULL THEN
		RAISE EXCEPTION 'month % is not closed', to_char(m, 'YYYY-MM-DD')
			USING ERRCODE = 'OV007',
				  DETAIL = 'The reconciliation file lists the final charge lines of a closed month.',
				  HINT = format('Close the month first: SELECT overage.close_month(%L);',
								to_char(m, 'YYYY-MM-DD'));
	END IF;

	/*
	 * Partner Center's daily rated usage reconciliation file, its columns
	 * in its order (README "The reconciliation file" says what fills each):
	 * the Azure plan is the subscription, the subscription that held the
	 * overage the entitlement, the service the meter.  What the product
	 * does not know is NULL, an empty field in the CSV.
	 */
	RETURN QUERY
		SELECT p.partner_id,					-- PartnerId
			   p.name,							-- PartnerName
			   c.customer_id,					-- CustomerId
			   c.name,							-- CustomerName
			   NULL::text,						-- CustomerDomainName
			   c.country,						-- CustomerCountry
			   NULL::text,						-- MpnId
			   ch.reseller_id,					-- Tier2MpnId
			   NULL::text,						-- InvoiceNumber
			   NULL::text, NULL::text, NULL::text, -- ProductId, SkuId, AvailabilityId
			   NULL::text, NULL::text,			-- SkuName, ProductName
			   NULL::text, NULL::text,			-- PublisherName, PublisherId
			   CASE WHEN s.parent_id IS NOT NULL THEN 'Azure plan' END, -- SubscriptionDescription
			   s.parent_id,						-- SubscriptionId: the Azure plan
			   m,								-- ChargeStartDate
			   (m + interval '1 month' - interval '1 day')::date, -- ChargeEndDate
			   NULL::date,						-- UsageDate: lines are per month
			   'Overage'::text,					-- MeterType
			   'Overage'::text,					-- MeterCategory
			   sv.service_id,					-- MeterId
			   NULL::text,						-- MeterSubCategory
			   sv.name,							-- MeterName
			   NULL::text,						-- MeterRegion
			   sv.unit,							-- Unit
			   NULL::text, NULL::text,			-- ResourceLocation, ConsumedService
			   NULL::text, NULL::text,			-- ResourceGroup, ResourceURI
			   'new'::text,						-- ChargeType
			   ch.unit_price,					-- UnitPrice
			   ch.quantity,						-- Quantity
			   '1 ' || sv.unit,					-- UnitType
			   ch.amount,						-- BillingPreTaxTotal
			   ch.currency,						-- BillingCurrency
			   ch.amount,						-- PricingPreTaxTotal
			   ch.currency,						-- PricingCurrency
			   NULL::text, NULL::text,			-- ServiceInfo1, ServiceInfo2
			   NULL::text, NULL::text,			-- Tags, AdditionalInfo
			   ch.unit_price,					-- EffectiveUnitPrice
			   1::numeric,						-- PCToBCExchangeRate
			   NULL::date,						-- PCToBCExchangeRateDate
			   s.subscription_id,				-- EntitlementId
			   CASE s.kind WHEN 'overage' THEN 'Overage subscription'
						   ELSE 'Azure subscription' END, -- EntitlementDescription
			   0::numeric,						-- PartnerEarnedCreditPercentage
			   0::numeric,						-- CreditPercentage
			   NULL::text,						-- CreditType
			   NULL::text, NULL::text, NULL::text -- BenefitOrderId, BenefitId, BenefitType
		  FROM @extschema@.charge ch
		  JOIN @extschema@.partner p ON p.partner_id = ch.partner_id
		  JOIN @extschema@.customer c ON c.customer_id = ch.customer_id
		  -- by the customer too: a co-located join on a Citus cluster
		  JOIN @extschema@.subscription s ON s.customer_id = ch.customer_id
									   AND s.subscription_id = ch.subscription_id
		  JOIN @extschema@.service sv ON sv.service_id = ch.service_id
		 WHERE ch.month = m AND ch.partner_id = reconciliation.partner_id
		 ORDER BY c.customer_id, sv.service_id, s.subscription_id,
				  ch.reseller_id NULLS FIRST, ch.unit_price;
END
$$;

COMMENT ON FUNCTION @extschema@.reconciliation(text, date) IS
'The partner''s reconciliation file lines of a closed month, one per charge line of its subscriptions, with the columns of Partner Center''s daily rated usage file in its order (\copy ... csv header gives its header line). Filled: PartnerId, PartnerName, CustomerId, CustomerName, CustomerCountry, Tier2MpnId (the indirect reseller), SubscriptionId and SubscriptionDescription (the Azure plan), ChargeStartDate and ChargeEndDate (the month, inclusive), MeterType and MeterCategory (Overage), MeterId and MeterName (the service), Unit and UnitType, ChargeType (new), UnitPrice, EffectiveUnitPrice, Quantity (minutes, 6 decimals), BillingPreTaxTotal and PricingPreTaxTotal (the line amount), BillingCurrency and PricingCurrency, PCToBCExchangeRate (1), EntitlementId and EntitlementDescription (the subscription that held the overage), PartnerEarnedCreditPercentage and CreditPercentage (0); the others are empty. Global admin and billing admin of the partner; operator';
