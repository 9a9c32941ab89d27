/* src/updates/overage--1.1--1.2.sql: what the 1.1 catalog needs before the
 * definitions of 1.2 (src/<concern>.sql below the DEFINITIONS line), which
 * the Makefile appends to this file to make overage--1.1--1.2.sql. */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION overage UPDATE TO '1.2'" to load this file. \quit

/*
 * 1.1 kept the 1.0 implementations of the API in schema overage_internal
 * behind SECURITY DEFINER wrappers.  1.2 has one function per API call
 * that authorizes, checks and writes (the definitions replace the
 * wrappers' bodies); the implementations go.
 */
DROP FUNCTION overage_internal.purchase(text, text, text, text, integer, timestamptz);
DROP FUNCTION overage_internal.set_quantity(uuid, integer, timestamptz);
DROP FUNCTION overage_internal.cancel(uuid, timestamptz);
DROP FUNCTION overage_internal.create_azure_subscription(text, text, timestamptz);
DROP FUNCTION overage_internal.get_overage(text);
DROP FUNCTION overage_internal.assign_overage(text, text, text, uuid, timestamptz);
DROP FUNCTION overage_internal.release_overage(text, text, text, timestamptz);
DROP FUNCTION overage_internal.pool_status(text, text, timestamptz);
DROP FUNCTION overage_internal.preview_month(date);
DROP FUNCTION overage_internal.close_month(date);
DROP FUNCTION overage_internal.reconciliation(text, date);
DROP SCHEMA overage_internal;


/*
 * Partner Center fidelity (issue 9).  Tags: the C parser now also takes the
 * spelling IncludesOverage; the stored generated column is recomputed for
 * the rows it changes (an UPDATE recomputes a generated column).
 */
COMMENT ON COLUMN @extschema@.sku.includes_overage IS
'Derived from tags (tag IncludeOverage or IncludesOverage); cannot be written';
UPDATE @extschema@.sku SET tags = tags
 WHERE includes_overage IS DISTINCT FROM coalesce(@extschema@.tags_include_overage(tags), false);

/*
 * Two-tier partners: the reseller of the holder, its history, the audit
 * log and the charge lines; the transfer's reason; new columns at the end,
 * as a fresh install has them.
 */
ALTER TABLE @extschema@.holder
	ADD COLUMN reseller_id text REFERENCES @extschema@.partner,
	DROP CONSTRAINT holder_reason_check,
	ADD CONSTRAINT holder_reason
		CHECK (reason IN ('first-in', 'assign', 'release', 'licence-ended', 'transfer')),
	ADD CONSTRAINT holder_reseller
		CHECK (reseller_id IS NULL OR (partner_id IS NOT NULL AND reseller_id <> partner_id));
COMMENT ON COLUMN @extschema@.holder.reason IS
'Why the last change happened: first-in, assign, release, licence-ended, transfer';
COMMENT ON COLUMN @extschema@.holder.reseller_id IS
'Two-tier partners (1.2): the indirect reseller on whose behalf partner_id (the indirect provider) holds the overage; NULL for a direct partner and for None. Never a holder by itself';

/*
 * license_quantity gets its licence's customer, the key a Citus cluster
 * distributes it on (README "Scaling out"); the history guard is off for
 * the fill (it refuses any write but the trigger's).
 */
ALTER TABLE @extschema@.license_quantity ADD COLUMN customer_id text;
ALTER TABLE @extschema@.license_quantity DISABLE TRIGGER license_quantity_guard;
UPDATE @extschema@.license_quantity lq SET customer_id = s.customer_id
  FROM @extschema@.subscription s WHERE s.subscription_id = lq.subscription_id;
ALTER TABLE @extschema@.license_quantity ENABLE TRIGGER license_quantity_guard;
ALTER TABLE @extschema@.license_quantity ALTER COLUMN customer_id SET NOT NULL;
COMMENT ON COLUMN @extschema@.license_quantity.customer_id IS
'The licence''s customer (1.2), as in overage.subscription: the key a Citus cluster distributes the table on, co-located with the subscription (README "Scaling out")';

ALTER TABLE @extschema@.holder_period ADD COLUMN reseller_id text;
COMMENT ON COLUMN @extschema@.holder_period.reseller_id IS
'The indirect reseller of the period''s holder (1.2); NULL for a direct partner and for None';

ALTER TABLE @extschema@.assignment_log
	ADD COLUMN from_reseller_id text,
	ADD COLUMN to_reseller_id text;
COMMENT ON COLUMN @extschema@.assignment_log.to_reseller_id IS
'The indirect reseller of the new holder (1.2); from_reseller_id that of the previous one';

ALTER TABLE @extschema@.charge ADD COLUMN reseller_id text;
COMMENT ON COLUMN @extschema@.charge.reseller_id IS
'The indirect reseller on whose behalf the holder held the overage (1.2; Tier2MpnId of the reconciliation file); NULL for a direct partner and on unassigned lines';
COMMENT ON TABLE @extschema@.charge IS
'Charge lines of closed months, written by close_month (no foreign keys: the lines are derived from rows that cannot be deleted, and a per-row check would cost the close a round trip per line): one per (overage subscription, reseller, customer, service, unit price) and one unassigned line per (customer, service, unit price) for overage while the holder was None or never assigned. Immutable once the month is closed.';

/* the customer_admin agent role, mapped to a customer */
ALTER TABLE @extschema@.agent
	ADD COLUMN customer_id text REFERENCES @extschema@.customer,
	DROP CONSTRAINT agent_agent_role_check,
	DROP CONSTRAINT agent_partner,
	ADD CONSTRAINT agent_role_known
		CHECK (agent_role IN ('global_admin', 'admin_agent', 'sales_agent',
							  'billing_admin', 'operator', 'customer_admin')),
	ADD CONSTRAINT agent_partner
		CHECK ((agent_role IN ('operator', 'customer_admin')) = (partner_id IS NULL)),
	ADD CONSTRAINT agent_customer
		CHECK ((agent_role = 'customer_admin') = (customer_id IS NOT NULL));
COMMENT ON COLUMN @extschema@.agent.agent_role IS
'global_admin | admin_agent | sales_agent | billing_admin (of partner_id) | operator (platform, partner_id NULL) | customer_admin (of customer_id, partner_id NULL; 1.2)';
COMMENT ON COLUMN @extschema@.agent.customer_id IS
'The customer a customer_admin acts for (1.2): it consents to or declines transfers of that customer''s overage and reads its overage and pools; NULL for every other agent role';

/*
 * signatures or result types that change: the definitions create them
 * again (_rate_month returns each line's reseller and price now)
 */
DROP FUNCTION @extschema@.assign_overage(text, text, text, uuid, timestamptz);
DROP FUNCTION @extschema@.reconciliation(text, date);
DROP FUNCTION @extschema@.add_agent(name, text, text);
DROP FUNCTION @extschema@._rate_month(date);

/*
 * Live rating (src/rating.sql): ingest records the calls not rated yet in
 * usage_pending instead of updating usage_month itself.  The comments of
 * the two tables say so (a fresh install takes them from
 * src/metering.sql).  Groups with calls from before the update have no
 * rated state: the readers rate them in full, rate_pending() stores them.
 */
COMMENT ON TABLE @extschema@.usage IS
'Calls: INSERT or COPY (customer_id, service_id, user_id, started_at, duration_s), by the operator only (trigger usage_authorize; the DBA grants INSERT to the ingest role). Statement-level C triggers validate the statement''s rows (known customer and service, duration at most 86400 s, started_at finite and at most one day after now(), month not closed) and record them in overage.usage_pending for the rating; a refused statement writes nothing. Not partitioned; see README.';
COMMENT ON TABLE @extschema@.usage_month IS
'Figures per (customer, service, month) of the calls taken in by the rating: number of calls and seconds. The calls not rated yet are in overage.usage_pending; rate_pending() and close_month add them here (1.2; before, the usage triggers kept this table themselves).';

/*
 * New in 1.2, wholly: the tables parts of src/transfer.sql (the three-party
 * transfer), src/rating.sql (live rating) and src/inputs.sql (price list
 * staging, prices by market and
 * date, Graph call kinds, Graph ids ingested) follow this file in the
 * built upgrade script (Makefile, SQL_NEW), so they are not copied here.
 */

