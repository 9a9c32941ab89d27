/*-------------------------------------------------------------------------
 *
 * src/holder.sql
 *	  Who holds a customer's overage per service: the current holder, its
 *	  history and the audit log, guarded by the C triggers of src/holder.c
 *	  (README "The overage holder" lists the rules in the order they are
 *	  checked), and the GET and PUT of the overage.
 *
 *-------------------------------------------------------------------------
 */

CREATE TABLE @extschema@.holder (
	customer_id	text NOT NULL REFERENCES @extschema@.customer,
	service_id	text NOT NULL REFERENCES @extschema@.service,
	partner_id	text REFERENCES @extschema@.partner,
	subscription_id uuid REFERENCES @extschema@.subscription,
	since		timestamptz NOT NULL,
	reason		text NOT NULL
		CHECK (reason IN ('first-in', 'assign', 'release', 'licence-ended')),
	PRIMARY KEY (customer_id, service_id),
	CONSTRAINT holder_none CHECK ((partner_id IS NULL) = (subscription_id IS NULL))
);

COMMENT ON TABLE @extschema@.holder IS
'Current overage holder per (customer, service); partner_id NULL = None. A row exists once the (customer, service) has had a holder. Guarded by C triggers: at most one holder, None-release handoff, eligibility; every change goes to holder_period and assignment_log.';
COMMENT ON COLUMN @extschema@.holder.since IS
'Instant of the last change of holder';
COMMENT ON COLUMN @extschema@.holder.reason IS
'Why the last change happened: first-in, assign, release, licence-ended';

CREATE TABLE @extschema@.holder_period (
	customer_id	text NOT NULL,
	service_id	text NOT NULL,
	partner_id	text,
	subscription_id uuid,
	valid_from	timestamptz NOT NULL,
	valid_to	timestamptz,
	PRIMARY KEY (customer_id, service_id, valid_from),
	FOREIGN KEY (customer_id, service_id) REFERENCES @extschema@.holder,
	CHECK (valid_to >= valid_from)
);

COMMENT ON TABLE @extschema@.holder_period IS
'Holder history per (customer, service): the holder during [valid_from, valid_to), partner_id NULL = None; periods never overlap. Written only by the holder trigger.';

CREATE TABLE @extschema@.assignment_log (
	log_id		bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	customer_id	text NOT NULL,
	service_id	text NOT NULL,
	from_partner_id text,
	from_subscription_id uuid,
	to_partner_id text,
	to_subscription_id uuid,
	at			timestamptz NOT NULL,
	by_role		name NOT NULL,
	reason		text NOT NULL,
	logged_at	timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX assignment_log_customer
	ON @extschema@.assignment_log (customer_id, service_id, log_id);

COMMENT ON TABLE @extschema@.assignment_log IS
'Audit log of every holder change (append-only, written by the holder trigger)';
COMMENT ON COLUMN @extschema@.assignment_log.by_role IS
'Database role the session was acting as (SET ROLE included)';

SELECT pg_catalog.pg_extension_config_dump('@extschema@.holder', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.holder_period', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.assignment_log', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.assignment_log_log_id_seq', '');

-- DEFINITIONS: re-runnable, replayed by every upgrade script (see Makefile)

CREATE OR REPLACE FUNCTION @extschema@.holder_guard()
RETURNS trigger
AS 'MODULE_PATHNAME', 'holder_guard'
LANGUAGE C
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION @extschema@.holder_guard() IS
'Internal: BEFORE trigger on overage.holder enforcing the holder rules';

CREATE OR REPLACE FUNCTION @extschema@.holder_record()
RETURNS trigger
AS 'MODULE_PATHNAME', 'holder_record'
LANGUAGE C
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION @extschema@.holder_record() IS
'Internal: AFTER trigger on overage.holder writing holder_period and assignment_log';

CREATE OR REPLACE TRIGGER holder_guard
	BEFORE INSERT OR UPDATE OR DELETE ON @extschema@.holder
	FOR EACH ROW EXECUTE FUNCTION @extschema@.holder_guard();
CREATE OR REPLACE TRIGGER holder_record
	AFTER INSERT OR UPDATE ON @extschema@.holder
	FOR EACH ROW EXECUTE FUNCTION @extschema@.holder_record();
CREATE OR REPLACE TRIGGER holder_no_truncate
	BEFORE TRUNCATE ON @extschema@.holder
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.history_guard();

CREATE OR REPLACE TRIGGER holder_period_guard
	BEFORE INSERT OR UPDATE OR DELETE ON @extschema@.holder_period
	FOR EACH ROW EXECUTE FUNCTION @extschema@.history_guard();
CREATE OR REPLACE TRIGGER holder_period_no_truncate
	BEFORE TRUNCATE ON @extschema@.holder_period
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.history_guard();
CREATE OR REPLACE TRIGGER assignment_log_guard
	BEFORE INSERT OR UPDATE OR DELETE ON @extschema@.assignment_log
	FOR EACH ROW EXECUTE FUNCTION @extschema@.history_guard();
CREATE OR REPLACE TRIGGER assignment_log_no_truncate
	BEFORE TRUNCATE ON @extschema@.assignment_log
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.history_guard();

------------------------------------------------------------------------------
-- The API: the GET and PUT of a customer's overage.  The rules (eligible
-- licence, valid target, nobody else holds it, time order) are enforced by
-- the holder_guard trigger, for this path and any other; the functions
-- authorize, check the arguments, and serialise on the (customer, service)
-- by locking its holder row.
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION @extschema@.get_overage(customer_id text)
RETURNS TABLE(service_id text, partner_id text, subscription_id uuid,
			  since timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	mine	text;
BEGIN
	PERFORM @extschema@._require('customer_id', get_overage.customer_id);
	mine := @extschema@._authorize_customer('get_overage', get_overage.customer_id);
	PERFORM @extschema@._require_exists('customer', get_overage.customer_id);

	-- an agent sees who holds the overage (whom to ask for a handoff), but
	-- the subscription only when its own partner holds it
	RETURN QUERY
		SELECT h.service_id, h.partner_id,
			   CASE WHEN mine IS NULL OR h.partner_id = mine
					THEN h.subscription_id END,
			   h.since
		  FROM @extschema@.holder h
		 WHERE h.customer_id = get_overage.customer_id
		 ORDER BY h.service_id;
END
$$;

COMMENT ON FUNCTION @extschema@.get_overage(text) IS
'GET of a customer''s overage: the holder per service (one row per service that ever had one); partner_id NULL means None. For an agent the subscription_id of another partner''s holding is NULL. Global admin and admin agent of a partner that bought for the customer; operator';

CREATE OR REPLACE FUNCTION @extschema@.assign_overage(partner_id text, customer_id text,
													  service_id text, subscription_id uuid,
													  at timestamptz DEFAULT pg_catalog.now())
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	mine	text;
	msg		text;
	hint	text;
	held_by	text;
	held_at	timestamptz;
BEGIN
	PERFORM @extschema@._require_finite('at', assign_overage.at);
	PERFORM @extschema@._require('partner_id', assign_overage.partner_id);
	PERFORM @extschema@._require('customer_id', assign_overage.customer_id);
	PERFORM @extschema@._require('subscription_id', assign_overage.subscription_id);
	mine := @extschema@._authorize('assign', assign_overage.partner_id);
	IF mine IS NOT NULL THEN
		PERFORM @extschema@._authorize_customer('assign', assign_overage.customer_id);
		PERFORM @extschema@._authorize_subscription('assign', assign_overage.subscription_id);
	END IF;

	PERFORM @extschema@._require('service_id', assign_overage.service_id);
	PERFORM @extschema@._require('at', assign_overage.at);
	PERFORM @extschema@._require_exists('partner', assign_overage.partner_id);
	PERFORM @extschema@._require_exists('customer', assign_overage.customer_id);
	PERFORM @extschema@._require_exists('service', assign_overage.service_id);
	PERFORM @extschema@._require_exists('subscription', assign_overage.subscription_id::text);

	/*
	 * The row lock makes a concurrent assign, release or licence
	 * cancellation wait, and the trigger then judges against the committed
	 * state.
	 */
	BEGIN
		LOOP
			PERFORM 1 FROM @extschema@.holder h
			 WHERE h.customer_id = assign_overage.customer_id
			   AND h.service_id = assign_overage.service_id
			   FOR UPDATE;
			IF FOUND THEN
				UPDATE @extschema@.holder h
				   SET partner_id = assign_overage.partner_id,
					   subscription_id = assign_overage.subscription_id,
					   since = assign_overage.at,
					   reason = 'assign'
				 WHERE h.customer_id = assign_overage.customer_id
				   AND h.service_id = assign_overage.service_id;
				EXIT;
			END IF;

			-- never had a holder: the first assignment creates the row
			INSERT INTO @extschema@.holder
				(customer_id, service_id, partner_id, subscription_id, since, reason)
			VALUES (assign_overage.customer_id, assign_overage.service_id,
					assign_overage.partner_id, assign_overage.subscription_id,
					assign_overage.at, 'assign')
			ON CONFLICT (customer_id, service_id) DO NOTHING;
			EXIT WHEN FOUND;
			-- somebody made the row meanwhile: lock it and judge again
		END LOOP;
	EXCEPTION WHEN SQLSTATE 'OV002' THEN
		IF mine IS NULL THEN
			RAISE;
		END IF;
		-- the trigger's error names the holding subscription: an agent gets
		-- the same error without another partner's subscription
		GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT;
		SELECT h.partner_id, h.since INTO held_by, held_at
		  FROM @extschema@.holder h
		 WHERE h.customer_id = assign_overage.customer_id
		   AND h.service_id = assign_overage.service_id;
		RAISE EXCEPTION USING ERRCODE = 'OV002', MESSAGE = msg, HINT = hint,
			DETAIL = format('Partner "%s" holds it since %s; partner "%s" cannot take it over.',
							held_by, held_at, assign_overage.partner_id);
	END;
END
$$;

COMMENT ON FUNCTION @extschema@.assign_overage(text, text, text, uuid, timestamptz) IS
'PUT of a customer''s overage for a service: the partner assigns it to one of its Azure or overage subscriptions for that customer (allowed when nobody or the same partner holds it). Global admin and admin agent of the partner; operator';

CREATE OR REPLACE FUNCTION @extschema@.release_overage(partner_id text, customer_id text,
													   service_id text,
													   at timestamptz DEFAULT pg_catalog.now())
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	mine	text;
	cur		@extschema@.holder;
BEGIN
	PERFORM @extschema@._require_finite('at', release_overage.at);
	PERFORM @extschema@._require('partner_id', release_overage.partner_id);
	PERFORM @extschema@._require('customer_id', release_overage.customer_id);
	mine := @extschema@._authorize('assign', release_overage.partner_id);
	IF mine IS NOT NULL THEN
		PERFORM @extschema@._authorize_customer('assign', release_overage.customer_id);
	END IF;

	PERFORM @extschema@._require('service_id', release_overage.service_id);
	PERFORM @extschema@._require('at', release_overage.at);
	PERFORM @extschema@._require_exists('partner', release_overage.partner_id);
	PERFORM @extschema@._require_exists('customer', release_overage.customer_id);
	PERFORM @extschema@._require_exists('service', release_overage.service_id);

	SELECT * INTO cur FROM @extschema@.holder h
	 WHERE h.customer_id = release_overage.customer_id
	   AND h.service_id = release_overage.service_id
	   FOR UPDATE;

	IF NOT FOUND OR cur.partner_id IS NULL THEN
		RETURN;					-- already None: nothing to do
	END IF;

	IF cur.partner_id <> release_overage.partner_id THEN
		-- the operator is told the holding subscription, an agent is not
		RAISE EXCEPTION 'partner "%" does not hold the overage of service "%" for customer "%"',
			release_overage.partner_id, release_overage.service_id,
			release_overage.customer_id
			USING ERRCODE = 'OV004',
				  DETAIL = CASE WHEN mine IS NULL
							THEN format('The overage is held by partner "%s" (subscription %s) since %s.',
										cur.partner_id, cur.subscription_id, cur.since)
							ELSE format('The overage is held by partner "%s" since %s.',
										cur.partner_id, cur.since) END,
				  HINT = 'Only the holding partner can set the overage to None.';
	END IF;

	UPDATE @extschema@.holder h
	   SET partner_id = NULL,
		   subscription_id = NULL,
		   since = release_overage.at,
		   reason = 'release'
	 WHERE h.customer_id = release_overage.customer_id
	   AND h.service_id = release_overage.service_id;
END
$$;

COMMENT ON FUNCTION @extschema@.release_overage(text, text, text, timestamptz) IS
'PUT of a customer''s overage with enabled = false: the holding partner sets the overage of a service to None. Global admin and admin agent of the partner; operator';
