/*-------------------------------------------------------------------------
 *
 * src/transfer.sql
 *	  The three-party transfer of a customer's overage (SPEC 1.2): another
 *	  partner asks for the overage of a (customer, service), the holding
 *	  partner and the customer consent, and at the second consent the
 *	  holder moves from the old partner straight to the new partner's
 *	  subscription, with no None period in between.  The holder triggers
 *	  (src/holder.c) let a holder change to another partner only through a
 *	  transfer with both consents, and supersede a pending transfer on any
 *	  other holder change.
 *
 *-------------------------------------------------------------------------
 */

CREATE TABLE @extschema@.transfer (
	transfer_id	uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	customer_id	text NOT NULL REFERENCES @extschema@.customer,
	service_id	text NOT NULL REFERENCES @extschema@.service,
	from_partner_id text NOT NULL REFERENCES @extschema@.partner,
	to_partner_id text NOT NULL REFERENCES @extschema@.partner,
	to_subscription_id uuid NOT NULL REFERENCES @extschema@.subscription,
	to_reseller_id text REFERENCES @extschema@.partner,
	requested_at timestamptz NOT NULL,
	requested_by name NOT NULL,
	holder_consent_at timestamptz,
	holder_consent_by name,
	customer_consent_at timestamptz,
	customer_consent_by name,
	expires_at	timestamptz NOT NULL,
	status		text NOT NULL DEFAULT 'pending',
	closed_at	timestamptz,
	closed_by	name,
	CONSTRAINT transfer_status
		CHECK (status IN ('pending', 'completed', 'declined', 'withdrawn',
						  'expired', 'superseded')),
	CONSTRAINT transfer_closed CHECK ((status = 'pending') = (closed_at IS NULL)),
	CONSTRAINT transfer_parties CHECK (from_partner_id <> to_partner_id),
	CONSTRAINT transfer_reseller
		CHECK (to_reseller_id IS NULL OR to_reseller_id <> to_partner_id),
	CONSTRAINT transfer_expiry CHECK (expires_at = requested_at + interval '7 days'),
	CONSTRAINT transfer_consents
		CHECK ((holder_consent_at IS NULL) = (holder_consent_by IS NULL)
			   AND (customer_consent_at IS NULL) = (customer_consent_by IS NULL))
);

-- at most one pending transfer per (customer, service); two concurrent
-- requests: the second waits for the first and then fails
CREATE UNIQUE INDEX transfer_one_pending
	ON @extschema@.transfer (customer_id, service_id) WHERE status = 'pending';
CREATE INDEX transfer_customer
	ON @extschema@.transfer (customer_id, service_id, requested_at);

COMMENT ON TABLE @extschema@.transfer IS
'Three-party transfers of a customer''s overage of a service from the holding partner to another partner (1.2). Every step is in the row; the holder change of a completed transfer is in assignment_log with reason transfer. Written by request_transfer, consent_transfer, decline_transfer and withdraw_transfer, and by the holder trigger (superseded). Visible to the two partners and the customer (row-level security).';
COMMENT ON COLUMN @extschema@.transfer.from_partner_id IS
'The partner holding the overage when the transfer was requested';
COMMENT ON COLUMN @extschema@.transfer.to_partner_id IS
'The requesting partner, to whose subscription to_subscription_id the overage moves';
COMMENT ON COLUMN @extschema@.transfer.to_reseller_id IS
'The indirect reseller the new holder acts for (as assign_overage''s reseller_id); NULL for a direct partner';
COMMENT ON COLUMN @extschema@.transfer.expires_at IS
'requested_at + 7 days: a consent, decline or withdrawal at or after it only records the expiry';
COMMENT ON COLUMN @extschema@.transfer.status IS
'pending | completed | declined | withdrawn | expired | superseded; only pending changes';
COMMENT ON COLUMN @extschema@.transfer.closed_at IS
'When the transfer left pending (expired: expires_at; superseded: the instant of the other holder change)';
COMMENT ON COLUMN @extschema@.transfer.closed_by IS
'Database role whose call closed it (for expired and superseded: the role whose call recorded it)';

SELECT pg_catalog.pg_extension_config_dump('@extschema@.transfer', '');

-- DEFINITIONS: re-runnable, replayed by every upgrade script (see Makefile)

------------------------------------------------------------------------------
-- Who may take a step of a transfer.  The two partners act through their
-- global admins and admin agents (action assign), the customer through its
-- customer admin (action consent), the operator for anyone.  A transfer
-- the caller's side is no party to and one that does not exist give the
-- same error.
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION @extschema@._authorize_transfer(transfer_id uuid, party text)
RETURNS @extschema@.transfer
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t		@extschema@.transfer;
	a		@extschema@.agent;
	who		name := @extschema@._caller();
BEGIN
	SELECT * INTO t FROM @extschema@.transfer x
	 WHERE x.transfer_id = _authorize_transfer.transfer_id;

	IF @extschema@._is_operator() THEN
		IF NOT FOUND THEN
			RAISE EXCEPTION 'transfer "%" does not exist', _authorize_transfer.transfer_id
				USING ERRCODE = 'foreign_key_violation';
		END IF;
		RETURN t;
	END IF;

	SELECT * INTO a FROM @extschema@.agent g WHERE g.role_name = who;
	IF t.transfer_id IS NULL
	   OR a.role_name IS NULL
	   OR NOT coalesce(a.partner_id IN (t.from_partner_id, t.to_partner_id)
					   OR a.customer_id = t.customer_id, false) THEN
		RAISE EXCEPTION 'permission denied for transfer "%"', _authorize_transfer.transfer_id
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = format('Role "%s" acts for no party of that transfer; only the two partners, the customer and the platform operator do.', who);
	END IF;

	IF party = 'customer' THEN
		IF a.agent_role <> 'customer_admin' OR a.customer_id IS DISTINCT FROM t.customer_id THEN
			RAISE EXCEPTION 'permission denied to % for customer "%"',
				@extschema@._action_text('consent'), t.customer_id
				USING ERRCODE = 'insufficient_privilege',
					  DETAIL = format('Role "%s" is a %s; only a customer_admin of customer "%s" and the platform operator may %s.',
									  who, a.agent_role, t.customer_id,
									  @extschema@._action_text('consent'));
		END IF;
	ELSE
		-- the holding partner's side ('holder') or the requester's ('requester')
		PERFORM @extschema@._authorize('assign',
			CASE party WHEN 'holder' THEN t.from_partner_id ELSE t.to_partner_id END);
	END IF;
	RETURN t;
END
$$;

COMMENT ON FUNCTION @extschema@._authorize_transfer(uuid, text) IS
'Internal: the transfer, if the caller may act for party (holder: the holding partner''s global admin or admin agent; requester: the requesting partner''s; customer: a customer_admin of the customer) or is the operator; else 42501, the same for a transfer the caller is no party to as for a missing one';

------------------------------------------------------------------------------
-- The steps.  Each locks the (customer, service)'s holder row FOR UPDATE
-- first (the lock assign, release and a licence cancellation take), then
-- the transfer row, so every race on a (customer, service) is ordered by
-- one lock and no step deadlocks another.
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION @extschema@._transfer_lock(transfer_id uuid, at timestamptz)
RETURNS @extschema@.transfer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t		@extschema@.transfer;
BEGIN
	SELECT * INTO t FROM @extschema@.transfer x
	 WHERE x.transfer_id = _transfer_lock.transfer_id;
	PERFORM 1 FROM @extschema@.holder h
	 WHERE h.customer_id = t.customer_id AND h.service_id = t.service_id
	   FOR UPDATE;
	-- by its customer too: one shard on a Citus cluster, where a lock
	-- on every shard is refused (README "Scaling out")
	SELECT * INTO t FROM @extschema@.transfer x
	 WHERE x.customer_id = t.customer_id
	   AND x.transfer_id = _transfer_lock.transfer_id
	   FOR UPDATE;

	IF t.status <> 'pending' THEN
		RAISE EXCEPTION 'transfer "%" is %, not pending', t.transfer_id, t.status
			USING ERRCODE = 'OV009',
				  DETAIL = format('It was %s at %s; a transfer that left pending never changes again.',
								  t.status, t.closed_at),
				  HINT = CASE WHEN t.status = 'completed'
							  THEN 'The overage moved when it completed; it changes now by assign, release or a new transfer.'
							  ELSE 'Request a new transfer (overage.request_transfer).' END;
	END IF;

	-- at or after its expiry a step records nothing but the expiry
	IF _transfer_lock.at >= t.expires_at THEN
		UPDATE @extschema@.transfer x
		   SET status = 'expired', closed_at = x.expires_at,
			   closed_by = @extschema@._caller()
		 WHERE x.customer_id = t.customer_id AND x.transfer_id = t.transfer_id
		RETURNING * INTO t;
		RETURN t;
	END IF;

	IF _transfer_lock.at < greatest(t.requested_at, t.holder_consent_at,
									t.customer_consent_at) THEN
		RAISE EXCEPTION 'transfer "%" cannot change at %, before its last step', t.transfer_id,
			_transfer_lock.at
			USING ERRCODE = 'OV005',
				  DETAIL = format('Its last step was at %s.',
								  greatest(t.requested_at, t.holder_consent_at,
										   t.customer_consent_at));
	END IF;
	RETURN t;
END
$$;

COMMENT ON FUNCTION @extschema@._transfer_lock(uuid, timestamptz) IS
'Internal: locks the holder row and then the transfer row; refuses a transfer that is not pending (OV009) and a step earlier than its last one (OV005); at or after expires_at marks it expired and returns it so';

CREATE OR REPLACE FUNCTION @extschema@.request_transfer(to_partner_id text, customer_id text,
														service_id text, to_subscription_id uuid,
														at timestamptz DEFAULT pg_catalog.now(),
														to_reseller_id text DEFAULT NULL)
RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	mine	text;
	cur		@extschema@.holder;
	other	@extschema@.transfer;
	id		uuid;
BEGIN
	PERFORM @extschema@._require_finite('at', request_transfer.at);
	PERFORM @extschema@._require('to_partner_id', request_transfer.to_partner_id);
	PERFORM @extschema@._require('customer_id', request_transfer.customer_id);
	PERFORM @extschema@._require('to_subscription_id', request_transfer.to_subscription_id);
	mine := @extschema@._authorize('assign', request_transfer.to_partner_id);
	IF mine IS NOT NULL THEN
		PERFORM @extschema@._authorize_customer('assign', request_transfer.customer_id);
		PERFORM @extschema@._authorize_subscription('assign', request_transfer.to_subscription_id);
	END IF;

	PERFORM @extschema@._require('service_id', request_transfer.service_id);
	PERFORM @extschema@._require('at', request_transfer.at);
	PERFORM @extschema@._require_exists('partner', request_transfer.to_partner_id);
	PERFORM @extschema@._require_exists('customer', request_transfer.customer_id);
	PERFORM @extschema@._require_exists('service', request_transfer.service_id);
	PERFORM @extschema@._require_exists('subscription', request_transfer.to_subscription_id::text);
	PERFORM @extschema@._require_reseller('to_reseller_id', request_transfer.to_partner_id,
										  request_transfer.to_reseller_id);

	-- the lock every holder change of the (customer, service) takes
	SELECT * INTO cur FROM @extschema@.holder h
	 WHERE h.customer_id = request_transfer.customer_id
	   AND h.service_id = request_transfer.service_id
	   FOR UPDATE;

	-- rule 1: held by another partner (None and never assigned: assign instead)
	IF cur.partner_id IS NULL THEN
		RAISE EXCEPTION 'overage of service "%" for customer "%" is not held by any partner: there is nothing to transfer',
			request_transfer.service_id, request_transfer.customer_id
			USING ERRCODE = 'OV010',
				  DETAIL = CASE WHEN cur.customer_id IS NULL THEN 'It has never been assigned.'
								ELSE format('It is None since %s.', cur.since) END,
				  HINT = 'Assign it instead (overage.assign_overage).';
	END IF;
	IF cur.partner_id = request_transfer.to_partner_id THEN
		RAISE EXCEPTION 'partner "%" already holds the overage of service "%" for customer "%": there is nothing to transfer',
			request_transfer.to_partner_id, request_transfer.service_id,
			request_transfer.customer_id
			USING ERRCODE = 'OV010',
				  HINT = 'A partner moves the overage between its own subscriptions with overage.assign_overage.';
	END IF;
	IF request_transfer.at < cur.since THEN
		RAISE EXCEPTION 'a transfer of the overage of customer "%" service "%" cannot be requested at %, before its last change',
			request_transfer.customer_id, request_transfer.service_id, request_transfer.at
			USING ERRCODE = 'OV005',
				  DETAIL = format('The last change was at %s (%s, partner "%s").',
								  cur.since, cur.reason, cur.partner_id);
	END IF;

	-- rule 1: the requester and its subscription meet assign rule 2 (OV001, OV003)
	PERFORM @extschema@._check_holder(request_transfer.to_partner_id,
									  request_transfer.customer_id,
									  request_transfer.service_id,
									  request_transfer.to_subscription_id,
									  request_transfer.at, cur.partner_id);

	-- a pending transfer past its expiry is expired now; another is refused
	UPDATE @extschema@.transfer t
	   SET status = 'expired', closed_at = t.expires_at,
		   closed_by = @extschema@._caller()
	 WHERE t.customer_id = request_transfer.customer_id
	   AND t.service_id = request_transfer.service_id
	   AND t.status = 'pending' AND t.expires_at <= request_transfer.at;
	SELECT * INTO other FROM @extschema@.transfer t
	 WHERE t.customer_id = request_transfer.customer_id
	   AND t.service_id = request_transfer.service_id
	   AND t.status = 'pending';
	IF FOUND THEN
		RAISE EXCEPTION 'a transfer of the overage of service "%" for customer "%" is already pending',
			request_transfer.service_id, request_transfer.customer_id
			USING ERRCODE = 'OV009',
				  DETAIL = format('Partner "%s" requested it at %s; it expires at %s.',
								  other.to_partner_id, other.requested_at, other.expires_at),
				  HINT = 'It must be completed, declined, withdrawn or expire first.';
	END IF;

	id := pg_catalog.gen_random_uuid();
	INSERT INTO @extschema@.transfer
		(transfer_id, customer_id, service_id, from_partner_id, to_partner_id,
		 to_subscription_id, to_reseller_id, requested_at, requested_by,
		 expires_at, status)
	VALUES (id, request_transfer.customer_id, request_transfer.service_id,
			cur.partner_id, request_transfer.to_partner_id,
			request_transfer.to_subscription_id, request_transfer.to_reseller_id,
			request_transfer.at, @extschema@._caller(),
			request_transfer.at + interval '7 days', 'pending');
	RETURN id;
END
$$;

COMMENT ON FUNCTION @extschema@.request_transfer(text, text, text, uuid, timestamptz, text) IS
'A partner asks for the overage of a (customer, service) that another partner holds, to its subscription to_subscription_id (for the indirect reseller to_reseller_id). Needs the licence and target conditions of assign_overage (OV001, OV003), a holder other than the requester (OV010) and no other pending transfer (OV009). Returns the transfer id; it expires after 7 days. Global admin and admin agent of the requesting partner; operator';

CREATE OR REPLACE FUNCTION @extschema@.consent_transfer(transfer_id uuid, party text,
														at timestamptz DEFAULT pg_catalog.now())
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	t		@extschema@.transfer;
	-- a variable, not a call in the CASE below: Citus refuses a volatile
	-- call inside CASE in a distributed UPDATE (README "Scaling out")
	who		name := @extschema@._caller();
BEGIN
	PERFORM @extschema@._require_finite('at', consent_transfer.at);
	PERFORM @extschema@._require('transfer_id', consent_transfer.transfer_id);
	PERFORM @extschema@._require('party', consent_transfer.party);
	IF consent_transfer.party NOT IN ('holder', 'customer') THEN
		RAISE EXCEPTION 'party must be "holder" or "customer", not "%"', consent_transfer.party
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'The holding partner and the customer consent to a transfer.';
	END IF;
	PERFORM @extschema@._authorize_transfer(consent_transfer.transfer_id, consent_transfer.party);
	PERFORM @extschema@._require('at', consent_transfer.at);

	t := @extschema@._transfer_lock(consent_transfer.transfer_id, consent_transfer.at);
	IF t.status = 'expired' THEN
		RETURN t.status;
	END IF;

	-- a party consenting again changes nothing
	IF (consent_transfer.party = 'holder' AND t.holder_consent_at IS NOT NULL)
	   OR (consent_transfer.party = 'customer' AND t.customer_consent_at IS NOT NULL) THEN
		RETURN t.status;
	END IF;

	UPDATE @extschema@.transfer x
	   SET holder_consent_at = CASE WHEN consent_transfer.party = 'holder'
									THEN consent_transfer.at ELSE x.holder_consent_at END,
		   holder_consent_by = CASE WHEN consent_transfer.party = 'holder'
									THEN who ELSE x.holder_consent_by END,
		   customer_consent_at = CASE WHEN consent_transfer.party = 'customer'
									  THEN consent_transfer.at ELSE x.customer_consent_at END,
		   customer_consent_by = CASE WHEN consent_transfer.party = 'customer'
									  THEN who ELSE x.customer_consent_by END
	 WHERE x.customer_id = t.customer_id AND x.transfer_id = t.transfer_id
	RETURNING * INTO t;

	IF t.holder_consent_at IS NULL OR t.customer_consent_at IS NULL THEN
		RETURN t.status;
	END IF;

	/*
	 * The second consent: the holder moves from the old partner straight to
	 * the new partner's subscription at this instant.  The holder trigger
	 * judges the change again (licence OV001, target OV003, closed month
	 * OV006) and lets it pass another partner's holding only because this
	 * transfer has both consents; a refusal rolls the consent back and the
	 * transfer stays pending.
	 */
	UPDATE @extschema@.holder h
	   SET partner_id = t.to_partner_id,
		   subscription_id = t.to_subscription_id,
		   reseller_id = t.to_reseller_id,
		   since = consent_transfer.at,
		   reason = 'transfer'
	 WHERE h.customer_id = t.customer_id AND h.service_id = t.service_id;

	UPDATE @extschema@.transfer x
	   SET status = 'completed', closed_at = consent_transfer.at,
		   closed_by = @extschema@._caller()
	 WHERE x.customer_id = t.customer_id AND x.transfer_id = t.transfer_id
	RETURNING * INTO t;
	RETURN t.status;
END
$$;

COMMENT ON FUNCTION @extschema@.consent_transfer(uuid, text, timestamptz) IS
'Consent to a pending transfer as party holder (the holding partner''s global admin or admin agent) or customer (a customer_admin of the customer); the operator for either. The second consent completes it: the holder moves to the new partner''s subscription at that instant (reason transfer), after the licence and target conditions are checked again. Returns the status after it (pending, completed, or expired when at is at or after expires_at)';

CREATE OR REPLACE FUNCTION @extschema@.decline_transfer(transfer_id uuid, party text,
														at timestamptz DEFAULT pg_catalog.now())
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	t		@extschema@.transfer;
BEGIN
	PERFORM @extschema@._require_finite('at', decline_transfer.at);
	PERFORM @extschema@._require('transfer_id', decline_transfer.transfer_id);
	PERFORM @extschema@._require('party', decline_transfer.party);
	IF decline_transfer.party NOT IN ('holder', 'customer') THEN
		RAISE EXCEPTION 'party must be "holder" or "customer", not "%"', decline_transfer.party
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'The holding partner and the customer decline a transfer; the requester withdraws it.';
	END IF;
	PERFORM @extschema@._authorize_transfer(decline_transfer.transfer_id, decline_transfer.party);
	PERFORM @extschema@._require('at', decline_transfer.at);

	t := @extschema@._transfer_lock(decline_transfer.transfer_id, decline_transfer.at);
	IF t.status = 'expired' THEN
		RETURN;
	END IF;

	UPDATE @extschema@.transfer x
	   SET status = 'declined', closed_at = decline_transfer.at,
		   closed_by = @extschema@._caller()
	 WHERE x.customer_id = t.customer_id AND x.transfer_id = t.transfer_id;
END
$$;

COMMENT ON FUNCTION @extschema@.decline_transfer(uuid, text, timestamptz) IS
'Decline a pending transfer as party holder or customer (who may consent may decline); it never changes again. At or after expires_at it records the expiry instead';

CREATE OR REPLACE FUNCTION @extschema@.withdraw_transfer(transfer_id uuid,
														 at timestamptz DEFAULT pg_catalog.now())
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	t		@extschema@.transfer;
BEGIN
	PERFORM @extschema@._require_finite('at', withdraw_transfer.at);
	PERFORM @extschema@._require('transfer_id', withdraw_transfer.transfer_id);
	PERFORM @extschema@._authorize_transfer(withdraw_transfer.transfer_id, 'requester');
	PERFORM @extschema@._require('at', withdraw_transfer.at);

	t := @extschema@._transfer_lock(withdraw_transfer.transfer_id, withdraw_transfer.at);
	IF t.status = 'expired' THEN
		RETURN;
	END IF;

	UPDATE @extschema@.transfer x
	   SET status = 'withdrawn', closed_at = withdraw_transfer.at,
		   closed_by = @extschema@._caller()
	 WHERE x.customer_id = t.customer_id AND x.transfer_id = t.transfer_id;
END
$$;

COMMENT ON FUNCTION @extschema@.withdraw_transfer(uuid, timestamptz) IS
'The requesting partner withdraws its pending transfer (its global admin or admin agent; operator); it never changes again. At or after expires_at it records the expiry instead';
