/* src/overage--1.0.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION overage" to load this file. \quit

/*
 * overage 1.0
 *
 * Tables hold the state; C triggers (src/holder.c, src/subscription.c,
 * src/guard.c) enforce the invariants whatever path writes the tables; the
 * PL/pgSQL functions below are the public API and only check arguments,
 * take the locks that serialise a (customer, service), and write.
 *
 * SQLSTATEs raised here and in C are listed in README.md ("Errors").
 */

------------------------------------------------------------------------------
-- Catalog
------------------------------------------------------------------------------

CREATE FUNCTION @extschema@.tags_include_overage(tags text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'tags_include_overage'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION @extschema@.tags_include_overage(text) IS
'True if a price list Tags value (tags separated by ";" or ",") holds the tag IncludeOverage, compared case-insensitively';

CREATE TABLE @extschema@.service (
	service_id	text PRIMARY KEY,
	name		text NOT NULL,
	unit		text NOT NULL DEFAULT 'Minute',
	unit_price	numeric NOT NULL CHECK (unit_price >= 0),
	currency	text NOT NULL DEFAULT 'USD'
);

COMMENT ON TABLE @extschema@.service IS
'Services with a calling allocation (for example a domestic calling plan) and their pay-as-you-go price';
COMMENT ON COLUMN @extschema@.service.unit_price IS
'Price of one unit (minute) of overage, in currency';

CREATE TABLE @extschema@.sku (
	product_id	text NOT NULL,
	sku_id		text NOT NULL,
	title		text NOT NULL,
	tags		text,
	includes_overage boolean NOT NULL
		GENERATED ALWAYS AS (coalesce(@extschema@.tags_include_overage(tags), false)) STORED,
	PRIMARY KEY (product_id, sku_id)
);

COMMENT ON TABLE @extschema@.sku IS
'Catalog SKUs (price list rows)';
COMMENT ON COLUMN @extschema@.sku.tags IS
'The price list''s Tags column, tags separated by ";" or ","';
COMMENT ON COLUMN @extschema@.sku.includes_overage IS
'Derived from tags (tag IncludeOverage); cannot be written';

CREATE TABLE @extschema@.sku_service (
	product_id	text NOT NULL,
	sku_id		text NOT NULL,
	service_id	text NOT NULL REFERENCES @extschema@.service,
	minutes_per_license integer NOT NULL CHECK (minutes_per_license >= 0),
	PRIMARY KEY (product_id, sku_id, service_id),
	FOREIGN KEY (product_id, sku_id) REFERENCES @extschema@.sku ON DELETE CASCADE
);

COMMENT ON TABLE @extschema@.sku_service IS
'Services a SKU includes, with the monthly minutes each licence adds to the customer''s pool';
COMMENT ON COLUMN @extschema@.sku_service.minutes_per_license IS
'Included minutes per licence per calendar month; 0 means pure pay-as-you-go';

CREATE FUNCTION @extschema@.sku_properties(product_id text, sku_id text)
RETURNS jsonb
LANGUAGE plpgsql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	result jsonb;
BEGIN
	SELECT jsonb_build_object(
			'productId', s.product_id,
			'skuId', s.sku_id,
			'title', s.title,
			'isOverageEnabled', s.includes_overage,
			'services', coalesce((
				SELECT jsonb_agg(jsonb_build_object(
							'serviceId', ss.service_id,
							'minutesPerLicense', ss.minutes_per_license)
						ORDER BY ss.service_id)
				  FROM @extschema@.sku_service ss
				 WHERE ss.product_id = s.product_id
				   AND ss.sku_id = s.sku_id), '[]'::jsonb))
	  INTO result
	  FROM @extschema@.sku s
	 WHERE s.product_id = sku_properties.product_id
	   AND s.sku_id = sku_properties.sku_id;

	IF result IS NULL THEN
		RAISE EXCEPTION 'SKU "%" of product "%" does not exist',
			sku_properties.sku_id, sku_properties.product_id
			USING ERRCODE = 'foreign_key_violation';
	END IF;
	RETURN result;
END
$$;

COMMENT ON FUNCTION @extschema@.sku_properties(text, text) IS
'Catalog SKU properties as JSON: productId, skuId, title, isOverageEnabled, services[{serviceId, minutesPerLicense}]';

------------------------------------------------------------------------------
-- Parties and subscriptions
------------------------------------------------------------------------------

CREATE TABLE @extschema@.partner (
	partner_id	text PRIMARY KEY,
	name		text NOT NULL
);

COMMENT ON TABLE @extschema@.partner IS
'Partners (resellers) that buy licences for customers';

CREATE TABLE @extschema@.customer (
	customer_id	text PRIMARY KEY,
	name		text NOT NULL,
	country		text
);

COMMENT ON TABLE @extschema@.customer IS
'Customers (tenants); their users share one pool of included minutes per service';

CREATE TABLE @extschema@.subscription (
	subscription_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	partner_id	text NOT NULL REFERENCES @extschema@.partner,
	customer_id	text NOT NULL REFERENCES @extschema@.customer,
	kind		text NOT NULL
		CHECK (kind IN ('license', 'azure_plan', 'azure_subscription', 'overage')),
	product_id	text,
	sku_id		text,
	quantity	integer CHECK (quantity > 0),
	status		text NOT NULL DEFAULT 'active'
		CHECK (status IN ('active', 'cancelled')),
	created_at	timestamptz NOT NULL,
	ended_at	timestamptz,
	parent_id	uuid REFERENCES @extschema@.subscription,
	changed_at	timestamptz NOT NULL,
	FOREIGN KEY (product_id, sku_id) REFERENCES @extschema@.sku,
	CONSTRAINT subscription_license_fields CHECK
		((kind = 'license') = (product_id IS NOT NULL AND sku_id IS NOT NULL
							   AND quantity IS NOT NULL)),
	CONSTRAINT subscription_license_only_fields CHECK
		(kind = 'license' OR (product_id IS NULL AND sku_id IS NULL
							  AND quantity IS NULL)),
	CONSTRAINT subscription_ended CHECK
		((status = 'cancelled') = (ended_at IS NOT NULL)),
	CONSTRAINT subscription_time_order CHECK
		(ended_at >= created_at AND changed_at >= created_at)
);

COMMENT ON TABLE @extschema@.subscription IS
'Licence subscriptions and the overage infrastructure provisioned for a (partner, customer): Azure plan, default Azure subscription, overage subscription. Rows are never deleted; cancel them.';
COMMENT ON COLUMN @extschema@.subscription.kind IS
'license | azure_plan | azure_subscription | overage';
COMMENT ON COLUMN @extschema@.subscription.quantity IS
'Number of licences (licences only); history in overage.license_quantity';
COMMENT ON COLUMN @extschema@.subscription.parent_id IS
'The Azure plan an azure_subscription or overage subscription belongs to';
COMMENT ON COLUMN @extschema@.subscription.changed_at IS
'Instant of the last change; later changes must not be earlier';

-- Provisioning is once per (partner, customer): one active Azure plan and one
-- active overage subscription.  These indexes make concurrent purchases of
-- the same partner for the same customer safe (INSERT ... ON CONFLICT).
CREATE UNIQUE INDEX subscription_one_azure_plan
	ON @extschema@.subscription (partner_id, customer_id)
	WHERE kind = 'azure_plan' AND status = 'active';
CREATE UNIQUE INDEX subscription_one_overage
	ON @extschema@.subscription (partner_id, customer_id)
	WHERE kind = 'overage' AND status = 'active';
CREATE INDEX subscription_customer_licenses
	ON @extschema@.subscription (customer_id, partner_id)
	WHERE kind = 'license';

CREATE TABLE @extschema@.license_quantity (
	subscription_id uuid NOT NULL REFERENCES @extschema@.subscription,
	valid_from	timestamptz NOT NULL,
	valid_to	timestamptz,
	quantity	integer NOT NULL CHECK (quantity > 0),
	PRIMARY KEY (subscription_id, valid_from),
	CHECK (valid_to > valid_from)
);

COMMENT ON TABLE @extschema@.license_quantity IS
'Quantity history of licence subscriptions: quantity during [valid_from, valid_to); valid_to NULL while current. Written only by the subscription trigger.';

------------------------------------------------------------------------------
-- The overage holder
------------------------------------------------------------------------------

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

------------------------------------------------------------------------------
-- Triggers (C)
------------------------------------------------------------------------------

CREATE FUNCTION @extschema@.holder_guard()
RETURNS trigger
AS 'MODULE_PATHNAME', 'holder_guard'
LANGUAGE C
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION @extschema@.holder_guard() IS
'Internal: BEFORE trigger on overage.holder enforcing the holder rules';

CREATE FUNCTION @extschema@.holder_record()
RETURNS trigger
AS 'MODULE_PATHNAME', 'holder_record'
LANGUAGE C
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION @extschema@.holder_record() IS
'Internal: AFTER trigger on overage.holder writing holder_period and assignment_log';

CREATE FUNCTION @extschema@.subscription_guard()
RETURNS trigger
AS 'MODULE_PATHNAME', 'subscription_guard'
LANGUAGE C
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION @extschema@.subscription_guard() IS
'Internal: BEFORE trigger on overage.subscription (time order, immutable columns, no deletes)';

CREATE FUNCTION @extschema@.subscription_record()
RETURNS trigger
AS 'MODULE_PATHNAME', 'subscription_record'
LANGUAGE C
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION @extschema@.subscription_record() IS
'Internal: AFTER trigger on overage.subscription keeping license_quantity and releasing the overage when the holder''s last licence ends';

CREATE FUNCTION @extschema@.history_guard()
RETURNS trigger
AS 'MODULE_PATHNAME', 'history_guard'
LANGUAGE C
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION @extschema@.history_guard() IS
'Internal: refuses writes to history and audit tables other than the extension''s own';

CREATE TRIGGER holder_guard
	BEFORE INSERT OR UPDATE OR DELETE ON @extschema@.holder
	FOR EACH ROW EXECUTE FUNCTION @extschema@.holder_guard();
CREATE TRIGGER holder_record
	AFTER INSERT OR UPDATE ON @extschema@.holder
	FOR EACH ROW EXECUTE FUNCTION @extschema@.holder_record();
CREATE TRIGGER holder_no_truncate
	BEFORE TRUNCATE ON @extschema@.holder
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.history_guard();

CREATE TRIGGER subscription_guard
	BEFORE INSERT OR UPDATE OR DELETE ON @extschema@.subscription
	FOR EACH ROW EXECUTE FUNCTION @extschema@.subscription_guard();
CREATE TRIGGER subscription_record
	AFTER INSERT OR UPDATE ON @extschema@.subscription
	FOR EACH ROW EXECUTE FUNCTION @extschema@.subscription_record();
CREATE TRIGGER subscription_no_truncate
	BEFORE TRUNCATE ON @extschema@.subscription
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.history_guard();

CREATE TRIGGER license_quantity_guard
	BEFORE INSERT OR UPDATE OR DELETE ON @extschema@.license_quantity
	FOR EACH ROW EXECUTE FUNCTION @extschema@.history_guard();
CREATE TRIGGER license_quantity_no_truncate
	BEFORE TRUNCATE ON @extschema@.license_quantity
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.history_guard();
CREATE TRIGGER holder_period_guard
	BEFORE INSERT OR UPDATE OR DELETE ON @extschema@.holder_period
	FOR EACH ROW EXECUTE FUNCTION @extschema@.history_guard();
CREATE TRIGGER holder_period_no_truncate
	BEFORE TRUNCATE ON @extschema@.holder_period
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.history_guard();
CREATE TRIGGER assignment_log_guard
	BEFORE INSERT OR UPDATE OR DELETE ON @extschema@.assignment_log
	FOR EACH ROW EXECUTE FUNCTION @extschema@.history_guard();
CREATE TRIGGER assignment_log_no_truncate
	BEFORE TRUNCATE ON @extschema@.assignment_log
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.history_guard();

------------------------------------------------------------------------------
-- Argument checks shared by the API functions (internal)
------------------------------------------------------------------------------

CREATE FUNCTION @extschema@._require(argname text, value anyelement)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF value IS NULL THEN
		RAISE EXCEPTION 'argument "%" must not be NULL', argname
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
END
$$;

COMMENT ON FUNCTION @extschema@._require(text, anyelement) IS
'Internal: raises null_value_not_allowed (22004) when a required argument is NULL';

CREATE FUNCTION @extschema@._require_exists(what text, id text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	found boolean;
BEGIN
	CASE what
		WHEN 'partner' THEN
			found := EXISTS (SELECT 1 FROM @extschema@.partner p WHERE p.partner_id = id);
		WHEN 'customer' THEN
			found := EXISTS (SELECT 1 FROM @extschema@.customer c WHERE c.customer_id = id);
		WHEN 'service' THEN
			found := EXISTS (SELECT 1 FROM @extschema@.service s WHERE s.service_id = id);
		WHEN 'subscription' THEN
			found := EXISTS (SELECT 1 FROM @extschema@.subscription s
							  WHERE s.subscription_id = id::uuid);
	END CASE;

	IF NOT found THEN
		RAISE EXCEPTION '% "%" does not exist', what, id
			USING ERRCODE = 'foreign_key_violation';
	END IF;
END
$$;

COMMENT ON FUNCTION @extschema@._require_exists(text, text) IS
'Internal: raises foreign_key_violation (23503) when a partner, customer, service or subscription does not exist';

------------------------------------------------------------------------------
-- Purchase, quantity, cancel
------------------------------------------------------------------------------

CREATE FUNCTION @extschema@._provision(partner_id text, customer_id text,
									   at timestamptz)
RETURNS uuid
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	plan_id		uuid;
	overage_id	uuid;
BEGIN
	/*
	 * The Azure plan, once per (partner, customer).  A concurrent purchase of
	 * the same partner for the same customer waits on the unique index and
	 * then finds the plan the other one made.
	 */
	SELECT s.subscription_id INTO plan_id
	  FROM @extschema@.subscription s
	 WHERE s.partner_id = _provision.partner_id
	   AND s.customer_id = _provision.customer_id
	   AND s.kind = 'azure_plan' AND s.status = 'active';

	IF plan_id IS NULL THEN
		INSERT INTO @extschema@.subscription AS s
			(partner_id, customer_id, kind, created_at, changed_at)
		VALUES (_provision.partner_id, _provision.customer_id, 'azure_plan',
				_provision.at, _provision.at)
		ON CONFLICT (partner_id, customer_id)
			WHERE kind = 'azure_plan' AND status = 'active' DO NOTHING
		RETURNING s.subscription_id INTO plan_id;

		IF plan_id IS NOT NULL THEN
			-- we made the plan: its default Azure subscription comes with it
			INSERT INTO @extschema@.subscription
				(partner_id, customer_id, kind, parent_id, created_at, changed_at)
			VALUES (_provision.partner_id, _provision.customer_id,
					'azure_subscription', plan_id, _provision.at, _provision.at);
		ELSE
			SELECT s.subscription_id INTO STRICT plan_id
			  FROM @extschema@.subscription s
			 WHERE s.partner_id = _provision.partner_id
			   AND s.customer_id = _provision.customer_id
			   AND s.kind = 'azure_plan' AND s.status = 'active';
		END IF;
	END IF;

	-- the subscription dedicated to overage, once per (partner, customer)
	SELECT s.subscription_id INTO overage_id
	  FROM @extschema@.subscription s
	 WHERE s.partner_id = _provision.partner_id
	   AND s.customer_id = _provision.customer_id
	   AND s.kind = 'overage' AND s.status = 'active';

	IF overage_id IS NULL THEN
		INSERT INTO @extschema@.subscription AS s
			(partner_id, customer_id, kind, parent_id, created_at, changed_at)
		VALUES (_provision.partner_id, _provision.customer_id, 'overage',
				plan_id, _provision.at, _provision.at)
		ON CONFLICT (partner_id, customer_id)
			WHERE kind = 'overage' AND status = 'active' DO NOTHING
		RETURNING s.subscription_id INTO overage_id;

		IF overage_id IS NULL THEN
			SELECT s.subscription_id INTO STRICT overage_id
			  FROM @extschema@.subscription s
			 WHERE s.partner_id = _provision.partner_id
			   AND s.customer_id = _provision.customer_id
			   AND s.kind = 'overage' AND s.status = 'active';
		END IF;
	END IF;

	RETURN overage_id;
END
$$;

COMMENT ON FUNCTION @extschema@._provision(text, text, timestamptz) IS
'Internal: makes sure (partner, customer) has an Azure plan, its default Azure subscription and an overage subscription; returns the overage subscription';

CREATE FUNCTION @extschema@.purchase(partner_id text, customer_id text,
									 product_id text, sku_id text,
									 quantity integer,
									 at timestamptz DEFAULT now())
RETURNS uuid
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	overage_sku	boolean;
	license_id	uuid;
	overage_id	uuid;
	svc			text;
BEGIN
	PERFORM @extschema@._require('partner_id', purchase.partner_id);
	PERFORM @extschema@._require('customer_id', purchase.customer_id);
	PERFORM @extschema@._require('product_id', purchase.product_id);
	PERFORM @extschema@._require('sku_id', purchase.sku_id);
	PERFORM @extschema@._require('quantity', purchase.quantity);
	PERFORM @extschema@._require('at', purchase.at);
	PERFORM @extschema@._require_exists('partner', purchase.partner_id);
	PERFORM @extschema@._require_exists('customer', purchase.customer_id);

	SELECT k.includes_overage INTO overage_sku
	  FROM @extschema@.sku k
	 WHERE k.product_id = purchase.product_id AND k.sku_id = purchase.sku_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'SKU "%" of product "%" does not exist',
			purchase.sku_id, purchase.product_id
			USING ERRCODE = 'foreign_key_violation';
	END IF;
	IF purchase.quantity <= 0 THEN
		RAISE EXCEPTION 'quantity must be greater than zero'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('The quantity given was %s.', purchase.quantity);
	END IF;

	IF overage_sku THEN
		overage_id := @extschema@._provision(purchase.partner_id,
											 purchase.customer_id, purchase.at);
	END IF;

	INSERT INTO @extschema@.subscription AS s
		(partner_id, customer_id, kind, product_id, sku_id, quantity,
		 created_at, changed_at)
	VALUES (purchase.partner_id, purchase.customer_id, 'license',
			purchase.product_id, purchase.sku_id, purchase.quantity,
			purchase.at, purchase.at)
	RETURNING s.subscription_id INTO license_id;

	IF overage_sku THEN
		/*
		 * First-in, per service, in service order so that two purchases of
		 * multi-service SKUs cannot deadlock.  ON CONFLICT DO NOTHING: when
		 * the (customer, service) has had a holder, a purchase never takes
		 * it and never re-enables None.  A concurrent first purchase waits
		 * here for the other one and then respects it.
		 */
		FOR svc IN
			SELECT ss.service_id
			  FROM @extschema@.sku_service ss
			 WHERE ss.product_id = purchase.product_id
			   AND ss.sku_id = purchase.sku_id
			 ORDER BY ss.service_id
		LOOP
			CONTINUE WHEN EXISTS (SELECT 1 FROM @extschema@.holder h
								   WHERE h.customer_id = purchase.customer_id
									 AND h.service_id = svc);
			INSERT INTO @extschema@.holder
				(customer_id, service_id, partner_id, subscription_id, since, reason)
			VALUES (purchase.customer_id, svc, purchase.partner_id, overage_id,
					purchase.at, 'first-in')
			ON CONFLICT (customer_id, service_id) DO NOTHING;
		END LOOP;
	END IF;

	RETURN license_id;
END
$$;

COMMENT ON FUNCTION @extschema@.purchase(text, text, text, text, integer, timestamptz) IS
'Buys quantity licences of a SKU for a customer; for an overage SKU provisions the partner''s Azure plan, default Azure subscription and overage subscription once, and applies first-in per service. Returns the licence subscription';

CREATE FUNCTION @extschema@.create_azure_subscription(partner_id text,
													  customer_id text,
													  at timestamptz DEFAULT now())
RETURNS uuid
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	plan_id	uuid;
	sub_id	uuid;
BEGIN
	PERFORM @extschema@._require('partner_id', create_azure_subscription.partner_id);
	PERFORM @extschema@._require('customer_id', create_azure_subscription.customer_id);
	PERFORM @extschema@._require('at', create_azure_subscription.at);
	PERFORM @extschema@._require_exists('partner', create_azure_subscription.partner_id);
	PERFORM @extschema@._require_exists('customer', create_azure_subscription.customer_id);

	SELECT s.subscription_id INTO plan_id
	  FROM @extschema@.subscription s
	 WHERE s.partner_id = create_azure_subscription.partner_id
	   AND s.customer_id = create_azure_subscription.customer_id
	   AND s.kind = 'azure_plan' AND s.status = 'active';
	IF plan_id IS NULL THEN
		RAISE EXCEPTION 'partner "%" has no Azure plan for customer "%"',
			create_azure_subscription.partner_id,
			create_azure_subscription.customer_id
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'An Azure plan is provisioned by the first purchase of an overage SKU.';
	END IF;

	INSERT INTO @extschema@.subscription AS s
		(partner_id, customer_id, kind, parent_id, created_at, changed_at)
	VALUES (create_azure_subscription.partner_id,
			create_azure_subscription.customer_id, 'azure_subscription',
			plan_id, create_azure_subscription.at, create_azure_subscription.at)
	RETURNING s.subscription_id INTO sub_id;
	RETURN sub_id;
END
$$;

COMMENT ON FUNCTION @extschema@.create_azure_subscription(text, text, timestamptz) IS
'Adds an Azure subscription under the partner''s Azure plan for the customer (a further target for the overage)';

CREATE FUNCTION @extschema@.set_quantity(subscription_id uuid, quantity integer,
										 at timestamptz DEFAULT now())
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	sub	@extschema@.subscription;
BEGIN
	PERFORM @extschema@._require('subscription_id', set_quantity.subscription_id);
	PERFORM @extschema@._require('quantity', set_quantity.quantity);
	PERFORM @extschema@._require('at', set_quantity.at);

	SELECT * INTO sub FROM @extschema@.subscription s
	 WHERE s.subscription_id = set_quantity.subscription_id
	   FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'subscription "%" does not exist', set_quantity.subscription_id
			USING ERRCODE = 'foreign_key_violation';
	END IF;
	IF sub.kind <> 'license' THEN
		RAISE EXCEPTION 'subscription "%" is not a licence subscription',
			set_quantity.subscription_id
			USING ERRCODE = 'wrong_object_type',
				  DETAIL = format('It is of kind %s; only licences have a quantity.', sub.kind);
	END IF;
	IF set_quantity.quantity <= 0 THEN
		RAISE EXCEPTION 'quantity must be greater than zero'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('The quantity given was %s.', set_quantity.quantity),
				  HINT = 'Use overage.cancel() to end a licence subscription.';
	END IF;
	IF sub.status <> 'active' THEN
		RAISE EXCEPTION 'subscription "%" is cancelled', set_quantity.subscription_id
			USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;

	UPDATE @extschema@.subscription s
	   SET quantity = set_quantity.quantity,
		   changed_at = set_quantity.at
	 WHERE s.subscription_id = set_quantity.subscription_id;
END
$$;

COMMENT ON FUNCTION @extschema@.set_quantity(uuid, integer, timestamptz) IS
'Changes the number of licences of a licence subscription from instant at on';

CREATE FUNCTION @extschema@.cancel(subscription_id uuid,
								   at timestamptz DEFAULT now())
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	sub	@extschema@.subscription;
BEGIN
	PERFORM @extschema@._require('subscription_id', cancel.subscription_id);
	PERFORM @extschema@._require('at', cancel.at);

	SELECT * INTO sub FROM @extschema@.subscription s
	 WHERE s.subscription_id = cancel.subscription_id
	   FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'subscription "%" does not exist', cancel.subscription_id
			USING ERRCODE = 'foreign_key_violation';
	END IF;
	IF sub.status = 'cancelled' THEN
		RAISE EXCEPTION 'subscription "%" is already cancelled', cancel.subscription_id
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = format('It was cancelled at %s.', sub.ended_at);
	END IF;

	-- the subscription trigger ends the quantity period and, when this was
	-- the holder's last overage-enabled licence, releases the overage
	UPDATE @extschema@.subscription s
	   SET status = 'cancelled',
		   ended_at = cancel.at,
		   changed_at = cancel.at
	 WHERE s.subscription_id = cancel.subscription_id;
END
$$;

COMMENT ON FUNCTION @extschema@.cancel(uuid, timestamptz) IS
'Cancels a subscription at instant at; cancelling the holder''s last overage-enabled licence for a service sets that overage to None';

------------------------------------------------------------------------------
-- The overage holder: GET and PUT
------------------------------------------------------------------------------

CREATE FUNCTION @extschema@.get_overage(customer_id text)
RETURNS TABLE(service_id text, partner_id text, subscription_id uuid,
			  since timestamptz)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
	PERFORM @extschema@._require('customer_id', get_overage.customer_id);
	PERFORM @extschema@._require_exists('customer', get_overage.customer_id);

	RETURN QUERY
		SELECT h.service_id, h.partner_id, h.subscription_id, h.since
		  FROM @extschema@.holder h
		 WHERE h.customer_id = get_overage.customer_id
		 ORDER BY h.service_id;
END
$$;

COMMENT ON FUNCTION @extschema@.get_overage(text) IS
'The customer''s overage holder per service (one row per service that ever had one); partner_id and subscription_id NULL mean None';

CREATE FUNCTION @extschema@.assign_overage(partner_id text, customer_id text,
										   service_id text, subscription_id uuid,
										   at timestamptz DEFAULT now())
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
	PERFORM @extschema@._require('partner_id', assign_overage.partner_id);
	PERFORM @extschema@._require('customer_id', assign_overage.customer_id);
	PERFORM @extschema@._require('service_id', assign_overage.service_id);
	PERFORM @extschema@._require('subscription_id', assign_overage.subscription_id);
	PERFORM @extschema@._require('at', assign_overage.at);
	PERFORM @extschema@._require_exists('partner', assign_overage.partner_id);
	PERFORM @extschema@._require_exists('customer', assign_overage.customer_id);
	PERFORM @extschema@._require_exists('service', assign_overage.service_id);
	PERFORM @extschema@._require_exists('subscription', assign_overage.subscription_id::text);

	/*
	 * The rules (eligible licence, valid target, nobody else holds it, time
	 * order) are enforced by the holder_guard trigger, for this path and any
	 * other.  Here we only serialise on the (customer, service): the row lock
	 * makes a concurrent assign, release or licence cancellation wait, and
	 * the trigger then judges against the committed state.
	 */
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
			RETURN;
		END IF;

		-- never had a holder: the first assignment creates the row
		INSERT INTO @extschema@.holder
			(customer_id, service_id, partner_id, subscription_id, since, reason)
		VALUES (assign_overage.customer_id, assign_overage.service_id,
				assign_overage.partner_id, assign_overage.subscription_id,
				assign_overage.at, 'assign')
		ON CONFLICT (customer_id, service_id) DO NOTHING;
		IF FOUND THEN
			RETURN;
		END IF;
		-- somebody made the row meanwhile: lock it and judge again
	END LOOP;
END
$$;

COMMENT ON FUNCTION @extschema@.assign_overage(text, text, text, uuid, timestamptz) IS
'PUT of a customer''s overage for a service: the partner assigns it to one of its Azure or overage subscriptions for that customer (allowed when nobody or the same partner holds it)';

CREATE FUNCTION @extschema@.release_overage(partner_id text, customer_id text,
											service_id text,
											at timestamptz DEFAULT now())
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	cur	@extschema@.holder;
BEGIN
	PERFORM @extschema@._require('partner_id', release_overage.partner_id);
	PERFORM @extschema@._require('customer_id', release_overage.customer_id);
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
		RAISE EXCEPTION 'partner "%" does not hold the overage of service "%" for customer "%"',
			release_overage.partner_id, release_overage.service_id,
			release_overage.customer_id
			USING ERRCODE = 'OV004',
				  DETAIL = format('The overage is held by partner "%s" (subscription %s) since %s.',
								  cur.partner_id, cur.subscription_id, cur.since),
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
'PUT of a customer''s overage with enabled = false: the holding partner sets the overage of a service to None';

------------------------------------------------------------------------------
-- pg_dump keeps the rows of the user-data tables
------------------------------------------------------------------------------

SELECT pg_catalog.pg_extension_config_dump('@extschema@.service', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.sku', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.sku_service', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.partner', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.customer', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.subscription', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.license_quantity', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.holder', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.holder_period', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.assignment_log', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.assignment_log_log_id_seq', '');

------------------------------------------------------------------------------
-- Metering (usage, pool, month close, reconciliation) follows below.
------------------------------------------------------------------------------

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
'Calls: INSERT or COPY (customer_id, service_id, user_id, started_at, duration_s). Statement-level C triggers validate the statement''s rows (known customer and service, duration at most 86400 s, started_at finite and at most one day after now(), month not closed) and keep overage.usage_month; a refused statement writes nothing. Not partitioned; see README.';
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
'Running figures per (customer, service, month), kept by the usage triggers: number of calls and seconds. pool_status uses them to skip the call scan when the total cannot exceed the pool.';
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
	CONSTRAINT charge_unassigned CHECK ((partner_id IS NULL) = (subscription_id IS NULL))
);

CREATE INDEX charge_month_partner ON @extschema@.charge (month, partner_id);

COMMENT ON TABLE @extschema@.charge IS
'Charge lines of closed months, written by close_month (no foreign keys: the lines are derived from rows that cannot be deleted, and a per-row check would cost the close a round trip per line): one per (overage subscription, customer, service, unit price) and one unassigned line per (customer, service, unit price) for overage while the holder was None or never assigned. Immutable once the month is closed.';
COMMENT ON COLUMN @extschema@.charge.partner_id IS
'Partner billed; NULL on unassigned lines (reported, never billed)';
COMMENT ON COLUMN @extschema@.charge.subscription_id IS
'Subscription that held the overage when the seconds were used; NULL on unassigned lines';
COMMENT ON COLUMN @extschema@.charge.quantity IS
'Minutes: overage_seconds / 60, 6 decimals';
COMMENT ON COLUMN @extschema@.charge.amount IS
'round(overage_seconds * unit_price / 60, 2), rounded once per line';

-- Triggers (C)

CREATE FUNCTION @extschema@.usage_ingest()
RETURNS trigger
AS 'MODULE_PATHNAME', 'usage_ingest'
LANGUAGE C
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION @extschema@.usage_ingest() IS
'Internal: AFTER STATEMENT trigger on overage.usage (transition tables): validates the statement''s rows, locks their months and keeps usage_month';

CREATE TRIGGER usage_insert
	AFTER INSERT ON @extschema@.usage
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.usage_ingest();
CREATE TRIGGER usage_update
	AFTER UPDATE ON @extschema@.usage
	REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.usage_ingest();
CREATE TRIGGER usage_delete
	AFTER DELETE ON @extschema@.usage
	REFERENCING OLD TABLE AS old_rows
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.usage_ingest();
CREATE TRIGGER usage_no_truncate
	BEFORE TRUNCATE ON @extschema@.usage
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.history_guard();

CREATE TRIGGER usage_month_guard
	BEFORE INSERT OR UPDATE OR DELETE ON @extschema@.usage_month
	FOR EACH ROW EXECUTE FUNCTION @extschema@.history_guard(
		'Its rows are running figures of overage.usage, kept by the usage triggers.',
		'Write overage.usage instead; the figures follow.');
CREATE TRIGGER usage_month_no_truncate
	BEFORE TRUNCATE ON @extschema@.usage_month
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.history_guard();

CREATE FUNCTION @extschema@.charge_guard()
RETURNS trigger
AS 'MODULE_PATHNAME', 'charge_guard'
LANGUAGE C
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION @extschema@.charge_guard() IS
'Internal: refuses charge lines inserted into, or changed or deleted in, a closed month, and TRUNCATE';

CREATE TRIGGER charge_insert
	AFTER INSERT ON @extschema@.charge
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.charge_guard();
CREATE TRIGGER charge_change
	BEFORE UPDATE OR DELETE ON @extschema@.charge
	FOR EACH ROW EXECUTE FUNCTION @extschema@.charge_guard();
CREATE TRIGGER charge_no_truncate
	BEFORE TRUNCATE ON @extschema@.charge
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.charge_guard();

SELECT pg_catalog.pg_extension_config_dump('@extschema@.billing_month', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.usage', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.usage_usage_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.usage_month', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.charge', '');

-- Rating (C) and the public functions over it

CREATE FUNCTION @extschema@._rate_month(month date)
RETURNS TABLE(customer_id text, service_id text, partner_id text,
			  subscription_id uuid, overage_seconds bigint)
AS 'MODULE_PATHNAME', 'rate_month'
LANGUAGE C STRICT
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION @extschema@._rate_month(date) IS
'Internal: overage seconds of the calendar month (UTC) holding the date, per (customer, service, holder subscription) and unassigned (partner NULL), by the attribution engine';

CREATE FUNCTION @extschema@._rate_status(customer_id text, service_id text,
										 at timestamptz,
										 OUT month date, OUT pool_s bigint,
										 OUT used_s bigint, OUT overage_s bigint,
										 OUT unassigned_s bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'rate_status'
LANGUAGE C STRICT
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION @extschema@._rate_status(text, text, timestamptz) IS
'Internal: pool_status in seconds';

CREATE FUNCTION @extschema@.pool_status(customer_id text, service_id text,
										at timestamptz DEFAULT now())
RETURNS TABLE(month date, pool_minutes numeric, used_minutes numeric,
			  remaining_minutes numeric, overage_minutes numeric,
			  unassigned_minutes numeric)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
	PERFORM @extschema@._require('customer_id', pool_status.customer_id);
	PERFORM @extschema@._require('service_id', pool_status.service_id);
	PERFORM @extschema@._require('at', pool_status.at);
	PERFORM @extschema@._require_exists('customer', pool_status.customer_id);
	PERFORM @extschema@._require_exists('service', pool_status.service_id);

	RETURN QUERY
		SELECT r.month,
			   round(r.pool_s / 60.0, 6),
			   round(r.used_s / 60.0, 6),
			   round(greatest(r.pool_s - r.used_s, 0) / 60.0, 6),
			   round(r.overage_s / 60.0, 6),
			   round(r.unassigned_s / 60.0, 6)
		  FROM @extschema@._rate_status(pool_status.customer_id,
										pool_status.service_id,
										pool_status.at) r;
END
$$;

COMMENT ON FUNCTION @extschema@.pool_status(text, text, timestamptz) IS
'Live pool of a (customer, service) as of instant at, over the calls of at''s calendar month (UTC) that started before at: pool at at, minutes used, remaining = greatest(pool - used, 0), overage minutes of those calls (assigned and unassigned) and the unassigned part. Minutes are seconds / 60 rounded to 6 decimals';

CREATE FUNCTION @extschema@.preview_month(month date)
RETURNS SETOF @extschema@.charge
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	m	date;
BEGIN
	PERFORM @extschema@._require('month', preview_month.month);
	m := date_trunc('month', preview_month.month::timestamp)::date;

	RETURN QUERY
		SELECT m, r.partner_id, r.customer_id, r.service_id, r.subscription_id,
			   r.overage_seconds,
			   round(r.overage_seconds / 60.0, 6)::numeric(18,6),
			   sv.unit_price,
			   round(r.overage_seconds * sv.unit_price / 60, 2)::numeric(18,2),
			   sv.currency
		  FROM @extschema@._rate_month(m) r
		  JOIN @extschema@.service sv ON sv.service_id = r.service_id
		 ORDER BY r.customer_id, r.service_id, r.partner_id NULLS LAST,
				  r.subscription_id;
END
$$;

COMMENT ON FUNCTION @extschema@.preview_month(date) IS
'The charge lines close_month would write for the calendar month (UTC) of the date, computed from the current data; writes nothing';

CREATE FUNCTION @extschema@.close_month(month date)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	m		date;
	closed	timestamptz;
	n		integer;
BEGIN
	PERFORM @extschema@._require('month', close_month.month);
	m := date_trunc('month', close_month.month::timestamp)::date;

	/*
	 * The month row lock orders close against ingest (see usage.c): after
	 * FOR UPDATE, in-flight ingests of the month have committed or rolled
	 * back, later ones will see the month closed, and each statement below
	 * takes a fresh snapshot -- which only READ COMMITTED gives.
	 */
	IF current_setting('transaction_isolation') <> 'read committed' THEN
		RAISE EXCEPTION 'close_month must run at isolation level READ COMMITTED'
			USING ERRCODE = 'invalid_transaction_state',
				  DETAIL = 'It waits for the month''s in-flight usage and must then read it with a fresh snapshot.';
	END IF;

	INSERT INTO @extschema@.billing_month (month) VALUES (m)
		ON CONFLICT (month) DO NOTHING;
	SELECT b.closed_at INTO closed FROM @extschema@.billing_month b
	 WHERE b.month = m FOR UPDATE;
	IF closed IS NOT NULL THEN
		RAISE EXCEPTION 'month % is already closed', to_char(m, 'YYYY-MM-DD')
			USING ERRCODE = 'OV006',
				  DETAIL = 'Its charge lines are final; billing_month.closed_at tells when it was closed.';
	END IF;

	INSERT INTO @extschema@.charge SELECT * FROM @extschema@.preview_month(m);
	GET DIAGNOSTICS n = ROW_COUNT;

	UPDATE @extschema@.billing_month b
	   SET closed_at = now(), closed_by = current_user, lines = n
	 WHERE b.month = m;
	RETURN n;
END
$$;

COMMENT ON FUNCTION @extschema@.close_month(date) IS
'Closes the calendar month (UTC) of the date: writes its charge lines and marks it closed, all or nothing. Returns the number of lines. A closed month is final (OV006 on a second close, on changes of its lines, and on usage, licence or holder changes dated in it)';

CREATE FUNCTION @extschema@.reconciliation(partner_id text, month date)
RETURNS TABLE("PartnerId" text, "PartnerName" text, "CustomerId" text,
			  "CustomerName" text, "CustomerCountry" text,
			  "SubscriptionId" uuid, "SubscriptionDescription" text,
			  "ChargeStartDate" date, "ChargeEndDate" date,
			  "ChargeType" text, "MeterCategory" text, "MeterName" text,
			  "Unit" text, "UnitPrice" numeric, "Quantity" numeric(18,6),
			  "BillingPreTaxTotal" numeric(18,2), "BillingCurrency" text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	m		date;
	closed	timestamptz;
BEGIN
	PERFORM @extschema@._require('partner_id', reconciliation.partner_id);
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

	RETURN QUERY
		SELECT p.partner_id, p.name, c.customer_id, c.name, c.country,
			   s.subscription_id,
			   CASE s.kind WHEN 'overage' THEN 'Overage subscription'
						   ELSE 'Azure subscription' END,
			   m, (m + interval '1 month' - interval '1 day')::date,
			   'Usage'::text, 'Overage'::text, sv.name, sv.unit,
			   ch.unit_price, ch.quantity, ch.amount, ch.currency
		  FROM @extschema@.charge ch
		  JOIN @extschema@.partner p ON p.partner_id = ch.partner_id
		  JOIN @extschema@.customer c ON c.customer_id = ch.customer_id
		  JOIN @extschema@.subscription s ON s.subscription_id = ch.subscription_id
		  JOIN @extschema@.service sv ON sv.service_id = ch.service_id
		 WHERE ch.month = m AND ch.partner_id = reconciliation.partner_id
		 ORDER BY c.customer_id, sv.service_id, s.subscription_id, ch.unit_price;
END
$$;

COMMENT ON FUNCTION @extschema@.reconciliation(text, date) IS
'The partner''s reconciliation file lines of a closed month: one per charge line of its overage subscriptions. Columns: PartnerId, PartnerName; CustomerId, CustomerName, CustomerCountry; SubscriptionId (the subscription that held the overage) and SubscriptionDescription (Overage subscription | Azure subscription); ChargeStartDate and ChargeEndDate (first and last day of the month, inclusive); ChargeType (always Usage); MeterCategory (always Overage); MeterName (the service name); Unit (the service unit); UnitPrice; Quantity (minutes, 6 decimals); BillingPreTaxTotal (the line amount); BillingCurrency';
