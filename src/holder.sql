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
	reason		text NOT NULL,
	reseller_id	text REFERENCES @extschema@.partner,
	PRIMARY KEY (customer_id, service_id),
	CONSTRAINT holder_none CHECK ((partner_id IS NULL) = (subscription_id IS NULL)),
	CONSTRAINT holder_reason
		CHECK (reason IN ('first-in', 'assign', 'release', 'licence-ended', 'transfer')),
	CONSTRAINT holder_reseller
		CHECK (reseller_id IS NULL OR (partner_id IS NOT NULL AND reseller_id <> partner_id))
);

COMMENT ON TABLE @extschema@.holder IS
'Current overage holder per (customer, service); partner_id NULL = None. A row exists once the (customer, service) has had a holder. Guarded by C triggers: at most one holder, None-release handoff, eligibility; every change goes to holder_period and assignment_log.';
COMMENT ON COLUMN @extschema@.holder.since IS
'Instant of the last change of holder';
COMMENT ON COLUMN @extschema@.holder.reason IS
'Why the last change happened: first-in, assign, release, licence-ended, transfer';
COMMENT ON COLUMN @extschema@.holder.reseller_id IS
'Two-tier partners (1.2): the indirect reseller on whose behalf partner_id (the indirect provider) holds the overage; NULL for a direct partner and for None. Never a holder by itself';

CREATE TABLE @extschema@.holder_period (
	customer_id	text NOT NULL,
	service_id	text NOT NULL,
	partner_id	text,
	subscription_id uuid,
	valid_from	timestamptz NOT NULL,
	valid_to	timestamptz,
	reseller_id	text,
	PRIMARY KEY (customer_id, service_id, valid_from),
	FOREIGN KEY (customer_id, service_id) REFERENCES @extschema@.holder,
	CHECK (valid_to >= valid_from)
);

COMMENT ON TABLE @extschema@.holder_period IS
'Holder history per (customer, service): the holder during [valid_from, valid_to), partner_id NULL = None; periods never overlap. Written only by the holder trigger.';
COMMENT ON COLUMN @extschema@.holder_period.reseller_id IS
'The indirect reseller of the period''s holder (1.2); NULL for a direct partner and for None';

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
	logged_at	timestamptz NOT NULL DEFAULT now(),
	from_reseller_id text,
	to_reseller_id text
);

CREATE INDEX assignment_log_customer
	ON @extschema@.assignment_log (customer_id, service_id, log_id);

COMMENT ON TABLE @extschema@.assignment_log IS
'Audit log of every holder change (append-only, written by the holder trigger)';
COMMENT ON COLUMN @extschema@.assignment_log.by_role IS
'Database role the session was acting as (SET ROLE included)';
COMMENT ON COLUMN @extschema@.assignment_log.to_reseller_id IS
'The indirect reseller of the new holder (1.2); from_reseller_id that of the previous one';

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

CREATE OR REPLACE FUNCTION @extschema@._require_reseller(argname text, partner_id text,
														 reseller_id text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF reseller_id IS NULL THEN
		RETURN;					-- a direct partner
	END IF;
	PERFORM @extschema@._require_exists('partner', reseller_id);
	IF reseller_id = partner_id THEN
		RAISE EXCEPTION 'partner "%" cannot be its own reseller', partner_id
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('%s names the indirect reseller on whose behalf an indirect provider holds the overage; leave it NULL for a direct partner.',
								  argname);
	END IF;
END
$$;

COMMENT ON FUNCTION @extschema@._require_reseller(text, text, text) IS
'Internal: a reseller given to assign_overage or request_transfer (argument argname) must be a partner (23503) other than the partner itself (22023); NULL (a direct partner) passes';

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

CREATE OR REPLACE FUNCTION @extschema@._check_holder(partner_id text, customer_id text,
													 service_id text, subscription_id uuid,
													 at timestamptz, current text)
RETURNS void
AS 'MODULE_PATHNAME', 'check_holder'
LANGUAGE C STRICT
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION @extschema@._check_holder(text, text, text, uuid, timestamptz, text) IS
'Internal: the licence (OV001) and target subscription (OV003) conditions of assign rule 2 at an instant, the checks of the holder trigger, for request_transfer; current names the current holder in the message';

CREATE OR REPLACE FUNCTION @extschema@.assign_overage(partner_id text, customer_id text,
													  service_id text, subscription_id uuid,
													  at timestamptz DEFAULT pg_catalog.now(),
													  reseller_id text DEFAULT NULL)
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
	PERFORM @extschema@._require_reseller('reseller_id', assign_overage.partner_id,
										  assign_overage.reseller_id);

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
					   reseller_id = assign_overage.reseller_id,
					   since = assign_overage.at,
					   reason = 'assign'
				 WHERE h.customer_id = assign_overage.customer_id
				   AND h.service_id = assign_overage.service_id;
				EXIT;
			END IF;

			-- never had a holder: the first assignment creates the row
			INSERT INTO @extschema@.holder
				(customer_id, service_id, partner_id, subscription_id, since, reason,
				 reseller_id)
			VALUES (assign_overage.customer_id, assign_overage.service_id,
					assign_overage.partner_id, assign_overage.subscription_id,
					assign_overage.at, 'assign', assign_overage.reseller_id)
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

COMMENT ON FUNCTION @extschema@.assign_overage(text, text, text, uuid, timestamptz, text) IS
'PUT of a customer''s overage for a service: the partner assigns it to one of its Azure or overage subscriptions for that customer (allowed when nobody or the same partner holds it), on behalf of the indirect reseller reseller_id (NULL: a direct partner). Supersedes a pending transfer. Global admin and admin agent of the partner; operator';

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
		   reseller_id = NULL,
		   since = release_overage.at,
		   reason = 'release'
	 WHERE h.customer_id = release_overage.customer_id
	   AND h.service_id = release_overage.service_id;
END
$$;

COMMENT ON FUNCTION @extschema@.release_overage(text, text, text, timestamptz) IS
'PUT of a customer''s overage with enabled = false: the holding partner sets the overage of a service to None. Supersedes a pending transfer. Global admin and admin agent of the partner; operator';

------------------------------------------------------------------------------
-- The overage as Partner Center's REST resource (1.2): a front end passes
-- the JSON bodies straight through.  Built with the JSON functions; the
-- PUT validates its body strictly and then is assign_overage or
-- release_overage.
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION @extschema@._overage_items(customer_id text, mine text)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT coalesce(jsonb_agg(jsonb_build_object(
				'type', h.service_id,
				'overageEnabled', h.partner_id IS NOT NULL,
				-- another partner's subscription and reseller are not shown
				-- to an agent (as get_overage)
				'azureEntitlementId',
					CASE WHEN mine IS NULL OR h.partner_id OPERATOR(pg_catalog.=) mine
						 THEN h.subscription_id END,
				'partnerId',
					CASE WHEN mine IS NULL OR h.partner_id OPERATOR(pg_catalog.=) mine
						 THEN h.reseller_id END,
				'attributes', jsonb_build_object('objectType', 'Overage'))
			ORDER BY h.service_id), '[]'::jsonb)
	  FROM @extschema@.holder h
	 WHERE h.customer_id OPERATOR(pg_catalog.=) _overage_items.customer_id
$$;

COMMENT ON FUNCTION @extschema@._overage_items(text, text) IS
'Internal: the items of the overage resource of a customer, by service_id; for an agent of partner mine, another partner''s azureEntitlementId and partnerId are null';

CREATE OR REPLACE FUNCTION @extschema@.get_overage_resource(customer_id text)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	mine	text;
	items	jsonb;
BEGIN
	PERFORM @extschema@._require('customer_id', get_overage_resource.customer_id);
	mine := @extschema@._authorize_customer('get_overage', get_overage_resource.customer_id);
	PERFORM @extschema@._require_exists('customer', get_overage_resource.customer_id);

	items := @extschema@._overage_items(get_overage_resource.customer_id, mine);
	RETURN jsonb_build_object(
		'totalCount', jsonb_array_length(items),
		'items', items,
		'attributes', jsonb_build_object('objectType', 'Collection'));
END
$$;

COMMENT ON FUNCTION @extschema@.get_overage_resource(text) IS
'GET of a customer''s overage as Partner Center''s JSON resource: {"totalCount", "items": [{"type": service_id, "overageEnabled", "azureEntitlementId", "partnerId": indirect reseller, "attributes": {"objectType": "Overage"}}] by service_id, "attributes": {"objectType": "Collection"}}. Who may call get_overage may call it (customer admins of the customer too)';

CREATE OR REPLACE FUNCTION @extschema@.put_overage_resource(partner_id text, customer_id text,
															body jsonb,
															at timestamptz DEFAULT pg_catalog.now())
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	mine		text;
	k			text;
	expected	text;
	service		text;
	enabled		boolean;
	target		uuid;
	reseller	text;
BEGIN
	PERFORM @extschema@._require_finite('at', put_overage_resource.at);
	PERFORM @extschema@._require('partner_id', put_overage_resource.partner_id);
	PERFORM @extschema@._require('customer_id', put_overage_resource.customer_id);
	mine := @extschema@._authorize('assign', put_overage_resource.partner_id);
	IF mine IS NOT NULL THEN
		PERFORM @extschema@._authorize_customer('assign', put_overage_resource.customer_id);
	END IF;
	PERFORM @extschema@._require('body', put_overage_resource.body);
	PERFORM @extschema@._require('at', put_overage_resource.at);

	-- the body, strictly: an object with known keys of the right JSON types
	IF jsonb_typeof(body) <> 'object' THEN
		RAISE EXCEPTION 'the overage resource must be a JSON object, not %', jsonb_typeof(body)
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Send {"type": <service id>, "overageEnabled": true|false, "azureEntitlementId": <subscription id>, "partnerId": <reseller id>}.';
	END IF;
	FOR k IN SELECT x FROM jsonb_object_keys(body) AS x ORDER BY x LOOP
		expected := CASE k WHEN 'type' THEN 'string'
						   WHEN 'overageEnabled' THEN 'boolean'
						   WHEN 'azureEntitlementId' THEN 'string'
						   WHEN 'partnerId' THEN 'string' END;
		IF expected IS NULL THEN
			RAISE EXCEPTION 'unknown key "%" in the overage resource', k
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = 'The keys are type, overageEnabled, azureEntitlementId and partnerId.';
		END IF;
		-- azureEntitlementId and partnerId may be null (as GET shows None)
		IF jsonb_typeof(body -> k) <> expected
		   AND NOT (jsonb_typeof(body -> k) = 'null'
					AND k IN ('azureEntitlementId', 'partnerId')) THEN
			RAISE EXCEPTION 'key "%" of the overage resource must be a JSON %, not %',
				k, expected, jsonb_typeof(body -> k)
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
	END LOOP;
	FOREACH k IN ARRAY ARRAY['type', 'overageEnabled'] LOOP
		IF NOT body ? k THEN
			RAISE EXCEPTION 'key "%" is missing from the overage resource', k
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = 'type (the service id) and overageEnabled are required.';
		END IF;
	END LOOP;
	service := body ->> 'type';
	enabled := (body -> 'overageEnabled')::boolean;
	reseller := body ->> 'partnerId';
	IF body ->> 'azureEntitlementId' IS NOT NULL THEN
		BEGIN
			target := (body ->> 'azureEntitlementId')::uuid;
		EXCEPTION WHEN invalid_text_representation THEN
			RAISE EXCEPTION 'key "azureEntitlementId" of the overage resource must be a subscription id (uuid), not "%"',
				body ->> 'azureEntitlementId'
				USING ERRCODE = 'invalid_parameter_value';
		END;
	END IF;
	IF enabled AND target IS NULL THEN
		RAISE EXCEPTION 'key "azureEntitlementId" is required when "overageEnabled" is true'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'It names the Azure or overage subscription that receives the overage.';
	END IF;
	IF NOT enabled AND (target IS NOT NULL OR reseller IS NOT NULL) THEN
		RAISE EXCEPTION 'keys "azureEntitlementId" and "partnerId" must be null or absent when "overageEnabled" is false'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'overageEnabled false sets the overage to None, which has no subscription and no reseller.';
	END IF;

	IF enabled THEN
		PERFORM @extschema@.assign_overage(put_overage_resource.partner_id,
										   put_overage_resource.customer_id,
										   service, target, put_overage_resource.at,
										   reseller);
	ELSE
		PERFORM @extschema@.release_overage(put_overage_resource.partner_id,
											put_overage_resource.customer_id,
											service, put_overage_resource.at);
	END IF;

	-- a release of an overage that never had a holder leaves no row: None
	RETURN coalesce(
		(SELECT i FROM jsonb_array_elements(
				@extschema@._overage_items(put_overage_resource.customer_id, mine)) AS i
		  WHERE i ->> 'type' = service),
		jsonb_build_object('type', service, 'overageEnabled', false,
						   'azureEntitlementId', NULL, 'partnerId', NULL,
						   'attributes', jsonb_build_object('objectType', 'Overage')));
END
$$;

COMMENT ON FUNCTION @extschema@.put_overage_resource(text, text, jsonb, timestamptz) IS
'PUT of a customer''s overage as Partner Center''s JSON resource: body {"type": service_id, "overageEnabled", "azureEntitlementId", "partnerId": indirect reseller}; overageEnabled true is assign_overage to azureEntitlementId (required then) for reseller partnerId, false is release_overage. A body that is not an object, lacks type or overageEnabled, has a key of the wrong JSON type, an unknown key or a bad uuid is 22023 naming the key, and nothing changes. Returns the item as get_overage_resource shows it. Who may call assign_overage';
