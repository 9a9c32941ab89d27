/*-------------------------------------------------------------------------
 *
 * src/alerts.sql
 *	  Budgets and alerts (SPEC 1.2): a partner's monthly budget for a
 *	  customer's overage (set_budget, remove_budget), and the alerts the
 *	  rating raises when a (customer, service)'s included seconds reach 80 %
 *	  and 100 % of its pool or a partner's overage for a customer reaches a
 *	  threshold of its budget.  Each alert is stored once per (month, kind,
 *	  partner, customer, service, threshold) by a unique key, and announced
 *	  on the NOTIFY channel overage_alert when its transaction commits.
 *	  This file declares the store that announces them (_raise_alerts, C in
 *	  src/alerts.c); the rating (rate_pending, its background worker,
 *	  close_month) detects the crossings and calls it.
 *
 *-------------------------------------------------------------------------
 */

CREATE TABLE @extschema@.budget (
	partner_id	text NOT NULL REFERENCES @extschema@.partner,
	customer_id	text NOT NULL REFERENCES @extschema@.customer,
	amount		numeric NOT NULL,
	currency	text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
	thresholds	numeric[] NOT NULL,
	set_at		timestamptz NOT NULL,
	set_by		name NOT NULL,
	PRIMARY KEY (partner_id, customer_id),
	-- finite and positive: NaN and Infinity compare above every number
	CONSTRAINT budget_amount CHECK (amount > 0 AND amount < 'Infinity'),
	-- one to five percents in (0, 1000], one-dimensional from 1, strictly
	-- increasing (so sorted, without duplicates; NULLs fail the comparisons)
	CONSTRAINT budget_thresholds CHECK (
		array_ndims(thresholds) = 1 AND array_lower(thresholds, 1) = 1
		AND cardinality(thresholds) BETWEEN 1 AND 5
		AND array_position(thresholds, NULL) IS NULL
		AND thresholds[1] > 0 AND thresholds[cardinality(thresholds)] <= 1000
		AND (cardinality(thresholds) < 2 OR thresholds[1] < thresholds[2])
		AND (cardinality(thresholds) < 3 OR thresholds[2] < thresholds[3])
		AND (cardinality(thresholds) < 4 OR thresholds[3] < thresholds[4])
		AND (cardinality(thresholds) < 5 OR thresholds[4] < thresholds[5]))
);

COMMENT ON TABLE @extschema@.budget IS
'A partner''s monthly budget for the overage it will be billed for a customer (all services), with the percents of it at which an alert of kind budget is raised (1.2). Budgets only warn; they never stop usage. Written by set_budget and remove_budget; a partner''s agents see their partner''s budgets (row-level security).';
COMMENT ON COLUMN @extschema@.budget.amount IS
'The budget per calendar month (UTC), in currency; finite and greater than zero';
COMMENT ON COLUMN @extschema@.budget.currency IS
'The currency of the partner''s charges for the customer when the budget was set: the one currency of the prices that apply to the customer (service_price of its market in effect then, else the service''s own currency)';
COMMENT ON COLUMN @extschema@.budget.thresholds IS
'One to five percents of amount, each in (0, 1000], stored sorted without duplicates; default {50,80,100}';
COMMENT ON COLUMN @extschema@.budget.set_at IS
'When the budget was last set (transaction time)';
COMMENT ON COLUMN @extschema@.budget.set_by IS
'Database role that last set it';

CREATE TABLE @extschema@.alert (
	alert_id	bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	month		date NOT NULL CHECK (month = date_trunc('month', month)::date),
	kind		text NOT NULL CHECK (kind IN ('pool', 'budget')),
	partner_id	text,
	customer_id	text NOT NULL,
	service_id	text,
	threshold	numeric NOT NULL CHECK (threshold > 0 AND threshold <= 1000),
	value		numeric NOT NULL,
	limit_value	numeric NOT NULL,
	crossed_at	timestamptz NOT NULL,
	raised_at	timestamptz NOT NULL,
	-- a pool alert is per service; a budget alert is per partner, all services
	CONSTRAINT alert_kind_fields
		CHECK ((kind = 'pool') = (service_id IS NOT NULL)
			   AND (kind = 'pool' OR partner_id IS NOT NULL)),
	-- crossed_at is the start of a call of the month (UTC)
	CONSTRAINT alert_month
		CHECK (month = date_trunc('month', crossed_at AT TIME ZONE 'UTC')::date),
	-- each alert exactly once, also when partner_id (no holder) is NULL
	CONSTRAINT alert_once
		UNIQUE NULLS NOT DISTINCT (month, kind, partner_id, customer_id, service_id, threshold)
);

COMMENT ON TABLE @extschema@.alert IS
'Alerts raised by the rating (1.2), each once per (month, kind, partner, customer, service, threshold) (constraint alert_once), never changed or withdrawn afterwards (trigger alert_guard), also when later re-rating lowers the figure. Each is announced on the NOTIFY channel overage_alert with the row as JSON when its transaction commits; the table is the durable record, listeners catch up by alert_id. No foreign keys (as charge: derived from rows that are not deleted). Partners see their alerts, a customer admin its customer''s pool alerts (row-level security).';
COMMENT ON COLUMN @extschema@.alert.alert_id IS
'Raising order: a listener that missed notifications reads the rows after the last alert_id it saw';
COMMENT ON COLUMN @extschema@.alert.month IS
'First day of the calendar month (UTC) of crossed_at';
COMMENT ON COLUMN @extschema@.alert.kind IS
'pool: a (customer, service)''s included seconds reached threshold % of its pool; budget: a partner''s overage amount for a customer reached threshold % of its budget';
COMMENT ON COLUMN @extschema@.alert.partner_id IS
'pool: the partner holding the overage of (customer, service) at crossed_at, NULL when None or never assigned; budget: the budget''s partner';
COMMENT ON COLUMN @extschema@.alert.service_id IS
'pool: the service; budget: NULL (a budget covers every service)';
COMMENT ON COLUMN @extschema@.alert.threshold IS
'Percent of limit_value that value reached: 80 or 100 for pool alerts (100: overage starts), one of the budget''s thresholds for budget alerts';
COMMENT ON COLUMN @extschema@.alert.value IS
'pool: included minutes of the month at the crossing; budget: the overage amount of the month, as rated so far, in the budget''s currency';
COMMENT ON COLUMN @extschema@.alert.limit_value IS
'pool: the pool in minutes at crossed_at; budget: the budget''s amount';
COMMENT ON COLUMN @extschema@.alert.crossed_at IS
'Start of the call that crossed the threshold';
COMMENT ON COLUMN @extschema@.alert.raised_at IS
'When the rating stored the alert (clock time; the notification follows at commit)';

SELECT pg_catalog.pg_extension_config_dump('@extschema@.budget', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.alert', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.alert_alert_id_seq', '');

-- DEFINITIONS: re-runnable, replayed by every upgrade script (see Makefile)

------------------------------------------------------------------------------
-- Alerts are never changed: no UPDATE, DELETE or TRUNCATE (inserts are
-- _raise_alerts', run by the rating as the owner; pg_dump's reload inserts).
------------------------------------------------------------------------------

CREATE OR REPLACE TRIGGER alert_guard
	BEFORE UPDATE OR DELETE ON @extschema@.alert
	FOR EACH ROW EXECUTE FUNCTION @extschema@.history_guard(
		'Alerts are raised once by the rating and never changed or withdrawn.',
		'Listeners read overage.alert; nothing needs to change it.');
CREATE OR REPLACE TRIGGER alert_no_truncate
	BEFORE TRUNCATE ON @extschema@.alert
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.history_guard();

------------------------------------------------------------------------------
-- Budgets.  Each function reads top to bottom: the arguments authorization
-- needs (22004), authorization (42501: the partner's global admin or admin
-- agent, for a customer the partner has bought for; the operator), then
-- existence and the checks, then the write.
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION @extschema@._budget_currency(partner_id text, customer_id text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	currencies	text[];
BEGIN
	/*
	 * The services the partner's charges for the customer can come from:
	 * those of the SKUs of its licences for the customer (cancelled ones
	 * too); every service when those SKUs include none.  The price of
	 * each: the customer's market (country, upper case) in effect now,
	 * else the service's own, as the rating prices a call.
	 */
	WITH mine AS (
		SELECT DISTINCT ss.service_id
		  FROM @extschema@.subscription s
		  JOIN @extschema@.sku_service ss
			ON ss.product_id = s.product_id AND ss.sku_id = s.sku_id
		 WHERE s.partner_id = _budget_currency.partner_id
		   AND s.customer_id = _budget_currency.customer_id
		   AND s.kind = 'license'
	), services AS (
		SELECT v.service_id, v.currency FROM @extschema@.service v
		 WHERE v.service_id IN (SELECT m.service_id FROM mine m)
			OR NOT EXISTS (SELECT 1 FROM mine)
	)
	SELECT array_agg(DISTINCT coalesce(
			   (SELECT p.currency FROM @extschema@.service_price p
				  JOIN @extschema@.customer c
					ON c.customer_id = _budget_currency.customer_id
				 WHERE p.service_id = v.service_id
				   AND p.market = upper(c.country)
				   AND p.effective_from <= now()
				   AND coalesce(p.effective_to, 'infinity') > now()),
			   v.currency))
	  INTO currencies
	  FROM services v;

	IF coalesce(cardinality(currencies), 0) <> 1 THEN
		RAISE EXCEPTION 'the charges of partner "%" for customer "%" are not in one currency',
			_budget_currency.partner_id, _budget_currency.customer_id
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = CASE WHEN currencies IS NULL
								THEN 'No service has a price.'
								ELSE format('The prices that apply to the customer are in %s.',
											array_to_string(currencies, ', ')) END,
				  HINT = 'A budget is in the currency of the partner''s charges; align the services'' prices for the customer''s market.';
	END IF;
	RETURN currencies[1];
END
$$;

COMMENT ON FUNCTION @extschema@._budget_currency(text, text) IS
'Internal: the currency of a partner''s charges for a customer, for set_budget: the one currency of the prices now in effect for the customer''s market (else the services'' own) of the services of the partner''s licences for the customer (every service if they include none); several or none: 22023 naming them';

CREATE OR REPLACE FUNCTION @extschema@._authorize_budget(partner_id text, customer_id text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
	PERFORM @extschema@._require('partner_id', _authorize_budget.partner_id);
	PERFORM @extschema@._require('customer_id', _authorize_budget.customer_id);
	-- the partner's global admin or admin agent (42501 for anyone else),
	-- for a customer the partner has bought for (42501 as for a missing one)
	IF @extschema@._authorize('budget', _authorize_budget.partner_id) IS NOT NULL THEN
		PERFORM @extschema@._authorize_customer('budget', _authorize_budget.customer_id);
	END IF;
	PERFORM @extschema@._require_exists('partner', _authorize_budget.partner_id);
	PERFORM @extschema@._require_exists('customer', _authorize_budget.customer_id);
	-- what _authorize_customer asks of an agent's partner, asked of the
	-- operator's: a budget is for a customer the partner has bought for
	IF NOT EXISTS (SELECT 1 FROM @extschema@.subscription s
					WHERE s.customer_id = _authorize_budget.customer_id
					  AND s.partner_id = _authorize_budget.partner_id) THEN
		RAISE EXCEPTION 'partner "%" has not bought for customer "%"',
			_authorize_budget.partner_id, _authorize_budget.customer_id
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = 'A budget is for the overage a partner is billed for a customer it buys for.';
	END IF;
END
$$;

COMMENT ON FUNCTION @extschema@._authorize_budget(text, text) IS
'Internal: the checks set_budget and remove_budget make first: partner_id and customer_id given (22004); the caller is the operator or a global admin or admin agent of the partner, which has bought for the customer (42501, the same for a customer it never bought for as for a missing one); then the partner and the customer exist (23503) and (for the operator) the partner has bought for the customer (55000)';

CREATE OR REPLACE FUNCTION @extschema@.set_budget(partner_id text, customer_id text,
												  amount numeric,
												  thresholds numeric[] DEFAULT '{50,80,100}')
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	cur		text;
	sorted	numeric[];
BEGIN
	PERFORM @extschema@._authorize_budget(set_budget.partner_id, set_budget.customer_id);

	PERFORM @extschema@._require('amount', set_budget.amount);
	PERFORM @extschema@._require('thresholds', set_budget.thresholds);
	-- NaN and Infinity compare above every number
	IF NOT (set_budget.amount > 0 AND set_budget.amount < 'Infinity') THEN
		RAISE EXCEPTION 'argument "amount" must be a finite amount greater than zero'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('The amount given was %s.', set_budget.amount);
	END IF;
	IF array_ndims(set_budget.thresholds) IS DISTINCT FROM 1
	   OR cardinality(set_budget.thresholds) > 5 THEN
		RAISE EXCEPTION 'argument "thresholds" must hold one to five percents'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('The thresholds given were %s.', set_budget.thresholds),
				  HINT = 'For example ''{50,80,100}'': an alert at 50 %, 80 % and 100 % of the budget.';
	END IF;
	IF array_position(set_budget.thresholds, NULL) IS NOT NULL THEN
		RAISE EXCEPTION 'argument "thresholds" must not contain NULL'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('The thresholds given were %s.', set_budget.thresholds);
	END IF;
	IF EXISTS (SELECT 1 FROM unnest(set_budget.thresholds) x
				WHERE NOT (x > 0 AND x <= 1000)) THEN
		RAISE EXCEPTION 'argument "thresholds" must hold percents greater than 0 and at most 1000'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('The thresholds given were %s.', set_budget.thresholds);
	END IF;
	SELECT array_agg(x ORDER BY x) INTO sorted FROM unnest(set_budget.thresholds) x;
	IF (SELECT count(DISTINCT x) FROM unnest(sorted) x) <> cardinality(sorted) THEN
		RAISE EXCEPTION 'argument "thresholds" must not repeat a percent'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('The thresholds given were %s.', set_budget.thresholds);
	END IF;

	cur := @extschema@._budget_currency(set_budget.partner_id, set_budget.customer_id);

	INSERT INTO @extschema@.budget AS b
		(partner_id, customer_id, amount, currency, thresholds, set_at, set_by)
	VALUES (set_budget.partner_id, set_budget.customer_id, set_budget.amount, cur,
			sorted, pg_catalog.now(), @extschema@._caller())
	ON CONFLICT (partner_id, customer_id) DO UPDATE
	   SET amount = EXCLUDED.amount, currency = EXCLUDED.currency,
		   thresholds = EXCLUDED.thresholds, set_at = EXCLUDED.set_at,
		   set_by = EXCLUDED.set_by;
END
$$;

COMMENT ON FUNCTION @extschema@.set_budget(text, text, numeric, numeric[]) IS
'Sets (or replaces) the partner''s monthly budget for its overage for the customer: amount (finite, > 0) in the currency of the partner''s charges for the customer (derived now; several currencies: 22023 naming them), alerts at thresholds percent of it (one to five, each in (0, 1000], no NULL, no repeat: 22023; stored sorted). Budgets only warn. Global admin and admin agent of the partner, for a customer it has bought for; operator';

CREATE OR REPLACE FUNCTION @extschema@.remove_budget(partner_id text, customer_id text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
	PERFORM @extschema@._authorize_budget(remove_budget.partner_id, remove_budget.customer_id);

	DELETE FROM @extschema@.budget b
	 WHERE b.partner_id = remove_budget.partner_id
	   AND b.customer_id = remove_budget.customer_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'partner "%" has no budget for customer "%"',
			remove_budget.partner_id, remove_budget.customer_id
			USING ERRCODE = 'undefined_object',
				  HINT = 'Set one with overage.set_budget().';
	END IF;
END
$$;

COMMENT ON FUNCTION @extschema@.remove_budget(text, text) IS
'Removes the partner''s budget for the customer (no budget: 42704); the alerts it raised stay. Global admin and admin agent of the partner, for a customer it has bought for; operator';

------------------------------------------------------------------------------
-- Raising alerts (the rating calls this; README "Budgets and alerts")
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION @extschema@._raise_alerts(month date, kind text[], partner_id text[],
													 customer_id text[], service_id text[],
													 threshold numeric[], value numeric[],
													 limit_value numeric[], crossed_at timestamptz[],
													 known_new boolean[] DEFAULT NULL)
RETURNS integer
AS 'MODULE_PATHNAME', 'raise_alerts'
LANGUAGE C
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION @extschema@._raise_alerts(date, text[], text[], text[], text[], numeric[], numeric[], numeric[], timestamptz[], boolean[]) IS
'Internal, for the rating (run as the owner): stores the alerts of month given as parallel arrays (one element per alert; arrays of different lengths: XX000), each once per (month, kind, partner, customer, service, threshold) (ON CONFLICT DO NOTHING: one stored before, by a concurrent rating or twice in the arrays is skipped; the rows known_new marks true are inserted plainly, all again with ON CONFLICT if one was stored after all), raised_at = clock_timestamp(), and sends each stored row as JSON (as row_to_json writes it) on channel overage_alert, in alert_id order, delivered at commit. Returns the number stored. C (src/alerts.c)';
