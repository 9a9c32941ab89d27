/*-------------------------------------------------------------------------
 *
 * src/parties.sql
 *	  Partners, customers and their subscriptions: licences (with their
 *	  quantity history) and the overage infrastructure a purchase
 *	  provisions.  The C triggers of src/subscription.c keep time order,
 *	  the quantity history and the automatic release of the overage when
 *	  the holder's last licence ends.
 *
 *-------------------------------------------------------------------------
 */

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
	customer_id	text NOT NULL,
	PRIMARY KEY (subscription_id, valid_from),
	CHECK (valid_to > valid_from)
);

COMMENT ON TABLE @extschema@.license_quantity IS
'Quantity history of licence subscriptions: quantity during [valid_from, valid_to); valid_to NULL while current. Written only by the subscription trigger.';
COMMENT ON COLUMN @extschema@.license_quantity.customer_id IS
'The licence''s customer (1.2), as in overage.subscription: the key a Citus cluster distributes the table on, co-located with the subscription (README "Scaling out")';

SELECT pg_catalog.pg_extension_config_dump('@extschema@.partner', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.customer', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.subscription', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.license_quantity', '');

-- DEFINITIONS: re-runnable, replayed by every upgrade script (see Makefile)

CREATE OR REPLACE FUNCTION @extschema@.subscription_guard()
RETURNS trigger
AS 'MODULE_PATHNAME', 'subscription_guard'
LANGUAGE C
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION @extschema@.subscription_guard() IS
'Internal: BEFORE trigger on overage.subscription (time order, immutable columns, no deletes)';

CREATE OR REPLACE FUNCTION @extschema@.subscription_record()
RETURNS trigger
AS 'MODULE_PATHNAME', 'subscription_record'
LANGUAGE C
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION @extschema@.subscription_record() IS
'Internal: AFTER trigger on overage.subscription keeping license_quantity and releasing the overage when the holder''s last licence ends';

CREATE OR REPLACE TRIGGER subscription_guard
	BEFORE INSERT OR UPDATE OR DELETE ON @extschema@.subscription
	FOR EACH ROW EXECUTE FUNCTION @extschema@.subscription_guard();
CREATE OR REPLACE TRIGGER subscription_record
	AFTER INSERT OR UPDATE ON @extschema@.subscription
	FOR EACH ROW EXECUTE FUNCTION @extschema@.subscription_record();
CREATE OR REPLACE TRIGGER subscription_no_truncate
	BEFORE TRUNCATE ON @extschema@.subscription
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.history_guard();
CREATE OR REPLACE TRIGGER license_quantity_guard
	BEFORE INSERT OR UPDATE OR DELETE ON @extschema@.license_quantity
	FOR EACH ROW EXECUTE FUNCTION @extschema@.history_guard();
CREATE OR REPLACE TRIGGER license_quantity_no_truncate
	BEFORE TRUNCATE ON @extschema@.license_quantity
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.history_guard();

CREATE OR REPLACE FUNCTION @extschema@._party_delete_guard()
RETURNS trigger
AS 'MODULE_PATHNAME', 'party_delete_guard'
LANGUAGE C
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION @extschema@._party_delete_guard() IS
'Internal (1.2): BEFORE DELETE and BEFORE UPDATE OF the id trigger on overage.customer and overage.service: one with calls in overage.usage is kept under its id (23503), as a foreign key would keep it; takes usage in SHARE mode first (waits for the loads in flight, holds new ones off until the delete commits), so that loads in READ COMMITTED look their parties up without locking them; a delete that goes through makes every backend forget the ids it found (party_cache.c)';

CREATE OR REPLACE TRIGGER customer_keep_calls
	BEFORE DELETE OR UPDATE OF customer_id ON @extschema@.customer
	FOR EACH ROW EXECUTE FUNCTION @extschema@._party_delete_guard();
CREATE OR REPLACE TRIGGER service_keep_calls
	BEFORE DELETE OR UPDATE OF service_id ON @extschema@.service
	FOR EACH ROW EXECUTE FUNCTION @extschema@._party_delete_guard();

CREATE OR REPLACE FUNCTION @extschema@._provision(partner_id text, customer_id text,
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

------------------------------------------------------------------------------
-- The API: purchase, quantity, cancel.  Each function reads top to bottom:
-- NULL checks of the arguments authorization needs (22004), authorization
-- (42501, src/access.sql), then existence and the business rules, then the
-- write, which the C triggers judge once more.  Authorizing before any
-- existence check keeps another partner's objects from showing through
-- error messages.
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION @extschema@.purchase(partner_id text, customer_id text,
												product_id text, sku_id text,
												quantity integer,
												at timestamptz DEFAULT pg_catalog.now())
RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	overage_sku	boolean;
	license_id	uuid;
	overage_id	uuid;
	svc			text;
BEGIN
	PERFORM @extschema@._require_finite('at', purchase.at);
	PERFORM @extschema@._require('partner_id', purchase.partner_id);
	PERFORM @extschema@._authorize('purchase', purchase.partner_id);

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
'Buys quantity licences of a SKU for a customer; for an overage SKU provisions the partner''s Azure plan, default Azure subscription and overage subscription once, and applies first-in per service. Returns the licence subscription. Global admin, admin agent, sales agent of the partner; operator';

CREATE OR REPLACE FUNCTION @extschema@.create_azure_subscription(partner_id text,
																 customer_id text,
																 at timestamptz DEFAULT pg_catalog.now())
RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	plan_id	uuid;
	sub_id	uuid;
BEGIN
	PERFORM @extschema@._require_finite('at', create_azure_subscription.at);
	PERFORM @extschema@._require('partner_id', create_azure_subscription.partner_id);
	PERFORM @extschema@._authorize('purchase', create_azure_subscription.partner_id);

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
'Adds an Azure subscription under the partner''s Azure plan for the customer (a further target for the overage). Global admin, admin agent, sales agent of the partner; operator';

CREATE OR REPLACE FUNCTION @extschema@.set_quantity(subscription_id uuid, quantity integer,
													at timestamptz DEFAULT pg_catalog.now())
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	sub	@extschema@.subscription;
	cust	text;
BEGIN
	PERFORM @extschema@._require_finite('at', set_quantity.at);
	PERFORM @extschema@._require('subscription_id', set_quantity.subscription_id);
	PERFORM @extschema@._authorize_subscription('purchase', set_quantity.subscription_id);

	PERFORM @extschema@._require('quantity', set_quantity.quantity);
	PERFORM @extschema@._require('at', set_quantity.at);

	-- the customer first, then the row locked by (customer_id,
	-- subscription_id): one shard on a Citus cluster, where a lock on
	-- every shard is refused (README "Scaling out")
	SELECT s.customer_id INTO cust FROM @extschema@.subscription s
	 WHERE s.subscription_id = set_quantity.subscription_id;
	SELECT * INTO sub FROM @extschema@.subscription s
	 WHERE s.customer_id = cust AND s.subscription_id = set_quantity.subscription_id
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
	 WHERE s.customer_id = sub.customer_id AND s.subscription_id = set_quantity.subscription_id;
END
$$;

COMMENT ON FUNCTION @extschema@.set_quantity(uuid, integer, timestamptz) IS
'Changes the number of licences of a licence subscription from instant at on. Global admin, admin agent, sales agent of the subscription''s partner; operator';

CREATE OR REPLACE FUNCTION @extschema@.cancel(subscription_id uuid,
											  at timestamptz DEFAULT pg_catalog.now())
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	sub	@extschema@.subscription;
	cust	text;
BEGIN
	PERFORM @extschema@._require_finite('at', cancel.at);
	PERFORM @extschema@._require('subscription_id', cancel.subscription_id);
	PERFORM @extschema@._authorize_subscription('purchase', cancel.subscription_id);

	PERFORM @extschema@._require('at', cancel.at);

	-- the customer first, then the row locked by (customer_id,
	-- subscription_id): one shard on a Citus cluster, where a lock on
	-- every shard is refused (README "Scaling out")
	SELECT s.customer_id INTO cust FROM @extschema@.subscription s
	 WHERE s.subscription_id = cancel.subscription_id;
	SELECT * INTO sub FROM @extschema@.subscription s
	 WHERE s.customer_id = cust AND s.subscription_id = cancel.subscription_id
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
	 WHERE s.customer_id = sub.customer_id AND s.subscription_id = cancel.subscription_id;
END
$$;

COMMENT ON FUNCTION @extschema@.cancel(uuid, timestamptz) IS
'Cancels a subscription at instant at; cancelling the holder''s last overage-enabled licence for a service sets that overage to None. Global admin, admin agent, sales agent of the subscription''s partner; operator';
