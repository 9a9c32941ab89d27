/*-------------------------------------------------------------------------
 *
 * holder.c
 *	  Triggers that guard the overage holder of a (customer, service).
 *
 * overage.holder has one row per (customer, service) that has ever had a
 * holder: the partner and subscription that receive the overage charges,
 * or NULLs for None.  Whatever writes the table (the API functions or a
 * DBA's direct statement), these triggers hold it to SPEC's rules:
 *
 *	  holder_guard (BEFORE ROW)
 *		- the key of a row never changes, rows are never deleted;
 *		- "since" never goes backwards;
 *		- a new holder must have an active licence for the customer whose
 *		  SKU includes overage for the service (OV001);
 *		- the target must be an active Azure or overage subscription of
 *		  that partner and customer (OV003);
 *		- a holder is replaced only by None or by the same partner: another
 *		  partner must wait for None (OV002) -- unless the change is the
 *		  completion of a transfer (reason "transfer") that both the holding
 *		  partner and the customer consented to (src/transfer.sql; OV009
 *		  without one);
 *		- a reseller (two-tier partners) only with a holder: None clears it;
 *		- no change of holder dated inside a closed month (OV006).
 *
 *	  holder_record (AFTER ROW)
 *		- closes the open holder_period and opens the next one, so the
 *		  history has no overlapping periods;
 *		- writes the audit row in assignment_log with the acting role;
 *		- any change other than a transfer's completion supersedes the
 *		  pending transfer of the (customer, service), if any (expired
 *		  instead when the change is at or after its expiry).
 *
 * Rows that pg_dump reloads (restore.c) are taken as they are: they were
 * judged when first written, and their history is restored with them.
 *
 * Serialisation is the callers' row lock on the holder row (SELECT ... FOR
 * UPDATE in the API, or the row lock any UPDATE takes): the checks below
 * then run with a fresh READ COMMITTED snapshot and see the committed state.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "overage.h"
#include "restore.h"
#include "guard.h"
#include "holder.h"
#include "citus.h"
#include "month.h"
#include "spi_util.h"

PG_FUNCTION_INFO_V1(holder_guard);
PG_FUNCTION_INFO_V1(holder_record);
PG_FUNCTION_INFO_V1(check_holder);

/* one holder row, as Datums */
typedef struct HolderRow
{
	Datum		customer_id;
	Datum		service_id;
	Datum		partner_id;
	bool		partner_null;
	Datum		subscription_id;
	bool		subscription_null;
	Datum		since;
	Datum		reason;
	Datum		reseller_id;
	bool		reseller_null;
} HolderRow;

static void
holder_row_read(HeapTuple tuple, TupleDesc desc, HolderRow *row)
{
	bool		isnull;

	row->customer_id = overage_attr(tuple, desc, "customer_id", &isnull);
	row->service_id = overage_attr(tuple, desc, "service_id", &isnull);
	row->partner_id = overage_attr(tuple, desc, "partner_id", &row->partner_null);
	row->subscription_id = overage_attr(tuple, desc, "subscription_id",
										&row->subscription_null);
	row->since = overage_attr(tuple, desc, "since", &isnull);
	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("overage holder needs an instant in \"since\"")));
	row->reason = overage_attr(tuple, desc, "reason", &isnull);
	if (isnull)
		row->reason = CStringGetTextDatum("assign");
	/* before ALTER EXTENSION UPDATE to 1.2 the table has no reseller */
	if (SPI_fnumber(desc, "reseller_id") > 0)
		row->reseller_id = overage_attr(tuple, desc, "reseller_id", &row->reseller_null);
	else
	{
		row->reseller_id = (Datum) 0;
		row->reseller_null = true;
	}
}

static bool
text_datum_eq(Datum a, bool a_null, Datum b, bool b_null)
{
	if (a_null || b_null)
		return a_null == b_null;
	return DatumGetBool(DirectFunctionCall2Coll(texteq, C_COLLATION_OID, a, b));
}

static bool
uuid_datum_eq(Datum a, bool a_null, Datum b, bool b_null)
{
	if (a_null || b_null)
		return a_null == b_null;
	return DatumGetBool(DirectFunctionCall2(uuid_eq, a, b));
}

/* same holder (partner, subscription and reseller) in both rows? */
static bool
holder_same(const HolderRow *a, const HolderRow *b)
{
	return text_datum_eq(a->partner_id, a->partner_null,
						 b->partner_id, b->partner_null) &&
		uuid_datum_eq(a->subscription_id, a->subscription_null,
					  b->subscription_id, b->subscription_null) &&
		text_datum_eq(a->reseller_id, a->reseller_null,
					  b->reseller_id, b->reseller_null);
}

/*
 * transfer_consented
 *		Is there a pending transfer of the (customer, service) from the old
 *		holder's partner to exactly the new holder (partner, subscription,
 *		reseller) that both the holding partner and the customer have
 *		consented to?  consent_transfer records the second consent on the
 *		transfer row (which it holds locked) before it changes the holder.
 *		Caller must be connected to SPI.
 */
static bool
transfer_consented(const HolderRow *oldrow, const HolderRow *newrow)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[6] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, UUIDOID, TEXTOID};
	Datum		values[6] = {newrow->customer_id, newrow->service_id,
		oldrow->partner_id, newrow->partner_id,
	newrow->subscription_id, newrow->reseller_id};
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ',
	newrow->reseller_null ? 'n' : ' '};

	if (oldrow->partner_null || newrow->partner_null)
		return false;
	overage_spi_exec(&plan,
					 "SELECT 1 FROM overage.transfer t"
					 " WHERE t.customer_id = $1 AND t.service_id = $2"
					 "   AND t.status = 'pending'"
					 "   AND t.from_partner_id = $3 AND t.to_partner_id = $4"
					 "   AND t.to_subscription_id = $5"
					 "   AND t.to_reseller_id IS NOT DISTINCT FROM $6"
					 "   AND t.holder_consent_at IS NOT NULL"
					 "   AND t.customer_consent_at IS NOT NULL",
					 6, argtypes, values, nulls, 1);
	return SPI_processed > 0;
}

/*
 * overage_partner_eligible
 *		Does the partner have a licence for the customer, active at instant
 *		"at", whose SKU includes overage and the service?  Caller must be
 *		connected to SPI.
 */
bool
overage_partner_eligible(Datum partner_id, Datum customer_id,
						 Datum service_id, Datum at)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[4] = {TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID};
	Datum		values[4] = {partner_id, customer_id, service_id, at};

	overage_spi_exec(&plan,
					 "SELECT 1 FROM overage.subscription l"
					 "  JOIN overage.sku k"
					 "    ON k.product_id = l.product_id AND k.sku_id = l.sku_id"
					 "  JOIN overage.sku_service ss"
					 "    ON ss.product_id = l.product_id AND ss.sku_id = l.sku_id"
					 " WHERE l.customer_id = $2 AND l.partner_id = $1"
					 "   AND l.kind = 'license' AND k.includes_overage"
					 "   AND ss.service_id = $3"
					 "   AND l.created_at <= $4"
					 "   AND (l.ended_at IS NULL OR l.ended_at > $4)"
					 " LIMIT 1",
					 4, argtypes, values, NULL, 1);
	return SPI_processed > 0;
}

/*
 * check_target
 *		The subscription that is to receive the overage must exist, belong
 *		to the partner and the customer, be an Azure or overage
 *		subscription, and be active at the instant of the change.
 *
 * The row is read FOR SHARE: a concurrent cancellation of the target
 * (which locks and updates that row) is waited for, and the check then
 * sees the cancelled row; and a cancellation that comes later waits for
 * this transaction and then finds that the subscription receives overage.
 * Without the lock both could commit and leave the overage on a cancelled
 * subscription.
 */
static void
check_target(const HolderRow *row)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[1] = {UUIDOID};
	Datum		values[1] = {row->subscription_id};
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	Datum		partner_id,
				customer_id,
				kind,
				created_at,
				ended_at;
	bool		ended_null;
	char	   *sub = overage_uuid_str(row->subscription_id, false);
	char	   *partner = overage_text_str(row->partner_id, false);
	char	   *customer = overage_text_str(row->customer_id, false);
	char	   *service = overage_text_str(row->service_id, false);
	char	   *kindstr;

	if (overage_is_distributed())
	{
		/*
		 * On a Citus cluster this trigger runs on the customer's shard and
		 * may read only co-located shards: the subscription is looked for
		 * among the customer's.  One of another customer is not found, so
		 * it is refused as not the customer's (README "Scaling out").
		 */
		static SPIPlanPtr cluster_plan = NULL;
		Oid			cluster_types[2] = {UUIDOID, TEXTOID};
		Datum		cluster_values[2] = {row->subscription_id, row->customer_id};

		overage_spi_exec(&cluster_plan,
						 "SELECT partner_id, customer_id, kind, created_at, ended_at"
						 "  FROM overage.subscription"
						 " WHERE customer_id = $2 AND subscription_id = $1"
						 "   FOR SHARE",
						 2, cluster_types, cluster_values, NULL, 1);
		if (SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_OVERAGE_INVALID_TARGET),
					 errmsg("overage can only be assigned to a subscription of the same customer"),
					 errdetail("Customer \"%s\" has no subscription %s (partner \"%s\", service \"%s\").",
							   customer, sub, partner, service)));
	}
	else
		overage_spi_exec(&plan,
						 "SELECT partner_id, customer_id, kind, created_at, ended_at"
						 "  FROM overage.subscription WHERE subscription_id = $1"
						 "   FOR SHARE",
						 1, argtypes, values, NULL, 1);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
				 errmsg("subscription \"%s\" does not exist", sub)));

	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	partner_id = overage_attr(tup, desc, "partner_id", &isnull);
	customer_id = overage_attr(tup, desc, "customer_id", &isnull);
	kind = overage_attr(tup, desc, "kind", &isnull);
	created_at = overage_attr(tup, desc, "created_at", &isnull);
	ended_at = overage_attr(tup, desc, "ended_at", &ended_null);
	kindstr = TextDatumGetCString(kind);

	if (!text_datum_eq(partner_id, false, row->partner_id, false))
		ereport(ERROR,
				(errcode(ERRCODE_OVERAGE_INVALID_TARGET),
				 errmsg("overage can only be assigned to a subscription of the assigning partner"),
				 errdetail("Subscription %s belongs to partner \"%s\", not to partner \"%s\" (customer \"%s\", service \"%s\").",
						   sub, TextDatumGetCString(partner_id), partner,
						   customer, service)));
	if (!text_datum_eq(customer_id, false, row->customer_id, false))
		ereport(ERROR,
				(errcode(ERRCODE_OVERAGE_INVALID_TARGET),
				 errmsg("overage can only be assigned to a subscription of the same customer"),
				 errdetail("Subscription %s is for customer \"%s\", not for customer \"%s\" (partner \"%s\", service \"%s\").",
						   sub, TextDatumGetCString(customer_id), customer,
						   partner, service)));
	if (strcmp(kindstr, "azure_subscription") != 0 &&
		strcmp(kindstr, "overage") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OVERAGE_INVALID_TARGET),
				 errmsg("overage can only be assigned to an Azure subscription or an overage subscription"),
				 errdetail("Subscription %s of partner \"%s\" for customer \"%s\" is of kind %s (service \"%s\").",
						   sub, partner, customer, kindstr, service)));
	if (DatumGetTimestampTz(created_at) > DatumGetTimestampTz(row->since) ||
		(!ended_null &&
		 DatumGetTimestampTz(ended_at) <= DatumGetTimestampTz(row->since)))
		ereport(ERROR,
				(errcode(ERRCODE_OVERAGE_INVALID_TARGET),
				 errmsg("overage can only be assigned to an active subscription"),
				 errdetail("Subscription %s of partner \"%s\" for customer \"%s\" is active from %s to %s, not at %s (service \"%s\").",
						   sub, partner, customer,
						   overage_time_str(created_at, false),
						   ended_null ? "its cancellation" : overage_time_str(ended_at, false),
						   overage_time_str(row->since, false), service)));
}

/*
 * check_eligible
 *		The new holder's partner must have a licence for the customer, active
 *		at the instant, whose SKU includes overage for the service (OV001).
 *		"current" names the current holder for the message.
 */
static void
check_eligible(const HolderRow *row, const char *current)
{
	char	   *partner = overage_text_str(row->partner_id, false);
	char	   *customer = overage_text_str(row->customer_id, false);
	char	   *service = overage_text_str(row->service_id, false);

	if (!overage_partner_eligible(row->partner_id, row->customer_id,
								  row->service_id, row->since))
		ereport(ERROR,
				(errcode(ERRCODE_OVERAGE_NOT_ELIGIBLE),
				 errmsg("partner \"%s\" has no active licence that enables overage of service \"%s\" for customer \"%s\"",
						partner, service, customer),
				 errdetail("No licence subscription of partner \"%s\" for customer \"%s\" active at %s has a SKU tagged IncludeOverage that includes service \"%s\"; the current holder is %s.",
						   partner, customer,
						   overage_time_str(row->since, false), service,
						   current)));
}

/*
 * overage._check_holder(partner_id text, customer_id text, service_id text,
 *						 subscription_id uuid, at timestamptz, current text)
 *		RETURNS void
 *
 * The licence and subscription conditions of assign rule 2 (OV001, OV003),
 * the very checks holder_guard makes, for request_transfer: a request is
 * judged by them before any holder change is written.  "current" names the
 * current holder in the OV001 message.
 */
Datum
check_holder(PG_FUNCTION_ARGS)
{
	HolderRow	row;

	memset(&row, 0, sizeof(row));
	row.partner_id = PG_GETARG_DATUM(0);
	row.customer_id = PG_GETARG_DATUM(1);
	row.service_id = PG_GETARG_DATUM(2);
	row.subscription_id = PG_GETARG_DATUM(3);
	row.since = PG_GETARG_DATUM(4);
	row.reseller_null = true;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	check_eligible(&row, TextDatumGetCString(PG_GETARG_DATUM(5)));
	check_target(&row);
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * holder_guard
 *		BEFORE INSERT OR UPDATE OR DELETE ON overage.holder FOR EACH ROW
 */
Datum
holder_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TriggerEvent event;
	TupleDesc	desc;
	HolderRow	newrow;
	HolderRow	oldrow;
	bool		is_update;
	bool		modified = false;
	char	   *customer;
	char	   *service;
	char	   *reason;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "holder_guard: not called by trigger manager");
	event = trigdata->tg_event;
	if (!TRIGGER_FIRED_BEFORE(event) || !TRIGGER_FIRED_FOR_ROW(event))
		elog(ERROR, "holder_guard: must be fired before event, for each row");

	desc = trigdata->tg_relation->rd_att;

	if (TRIGGER_FIRED_BY_DELETE(event))
	{
		holder_row_read(trigdata->tg_trigtuple, desc, &oldrow);
		ereport(ERROR,
				(errcode(ERRCODE_OVERAGE_HISTORY_READONLY),
				 errmsg("the overage holder of customer \"%s\" service \"%s\" cannot be deleted",
						TextDatumGetCString(oldrow.customer_id),
						TextDatumGetCString(oldrow.service_id)),
				 errhint("Use overage.release_overage() to set it to None.")));
	}
	if (!TRIGGER_FIRED_BY_INSERT(event) && !TRIGGER_FIRED_BY_UPDATE(event))
		elog(ERROR, "holder_guard: unsupported trigger event");

	is_update = TRIGGER_FIRED_BY_UPDATE(event);

	/*
	 * pg_dump's reload of the table: the row was judged when it was first
	 * written, and its history and audit rows are restored with it.
	 */
	if (!is_update && overage_restoring(trigdata->tg_relation))
		return PointerGetDatum(trigdata->tg_trigtuple);

	holder_row_read(is_update ? trigdata->tg_newtuple : trigdata->tg_trigtuple,
					desc, &newrow);
	customer = TextDatumGetCString(newrow.customer_id);
	service = TextDatumGetCString(newrow.service_id);

	if (is_update)
	{
		holder_row_read(trigdata->tg_trigtuple, desc, &oldrow);

		if (!text_datum_eq(oldrow.customer_id, false, newrow.customer_id, false) ||
			!text_datum_eq(oldrow.service_id, false, newrow.service_id, false))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the customer and service of an overage holder row cannot change")));

		if (DatumGetTimestampTz(newrow.since) < DatumGetTimestampTz(oldrow.since))
			ereport(ERROR,
					(errcode(ERRCODE_OVERAGE_TIME_BACKWARDS),
					 errmsg("overage of customer \"%s\" service \"%s\" cannot change at %s, before its last change",
							customer, service, overage_time_str(newrow.since, false)),
					 errdetail("The last change was at %s (%s, partner \"%s\").",
							   overage_time_str(oldrow.since, false),
							   TextDatumGetCString(oldrow.reason),
							   overage_text_str(oldrow.partner_id, oldrow.partner_null))));

		/* no change of holder: keep the row as it was, log nothing */
		if (holder_same(&oldrow, &newrow))
			return PointerGetDatum(trigdata->tg_trigtuple);
	}

	/* a change of holder dated in a closed month would rewrite its bill */
	overage_refuse_closed_month(DatumGetTimestampTz(newrow.since),
								psprintf("the change of the overage holder of customer \"%s\" service \"%s\"",
										 customer, service));

	if (newrow.partner_null != newrow.subscription_null)
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("overage of customer \"%s\" service \"%s\" needs both a partner and a subscription, or neither (None)",
						customer, service)));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/*
	 * A direct UPDATE that changes the holder but leaves "reason" as it was
	 * would log the previous change's reason (say "first-in" for a change to
	 * None).  The API always sets the reason; for other writers derive it
	 * from the change: None is a release, anything else an assignment.  A
	 * "transfer" is kept only where a consented transfer is being completed
	 * (a second transfer right after a first one sets the same reason).
	 */
	reason = TextDatumGetCString(newrow.reason);
	if (is_update && text_datum_eq(oldrow.reason, false, newrow.reason, false))
	{
		const char *derived = newrow.partner_null ? "release" : "assign";

		if (strcmp(reason, "transfer") == 0 && !newrow.partner_null &&
			transfer_consented(&oldrow, &newrow))
			derived = "transfer";
		if (strcmp(reason, derived) != 0)
		{
			reason = pstrdup(derived);
			newrow.reason = CStringGetTextDatum(reason);
			modified = true;
		}
	}

	/* None has no reseller */
	if (newrow.partner_null && !newrow.reseller_null)
	{
		newrow.reseller_null = true;
		newrow.reseller_id = (Datum) 0;
		modified = true;
	}

	if (!newrow.partner_null)
	{
		char	   *partner = TextDatumGetCString(newrow.partner_id);
		bool		transfer = strcmp(reason, "transfer") == 0;

		/* rule: an active licence that enables overage for the service */
		check_eligible(&newrow,
					   is_update ? overage_text_str(oldrow.partner_id, oldrow.partner_null) : "None");

		/* rule: the target is the partner's active Azure/overage subscription */
		check_target(&newrow);

		/*
		 * rule: a transfer's completion needs the transfer that both the
		 * holding partner and the customer consented to
		 */
		if (transfer && !(is_update && transfer_consented(&oldrow, &newrow)))
			ereport(ERROR,
					(errcode(ERRCODE_OVERAGE_TRANSFER_STATE),
					 errmsg("overage of service \"%s\" for customer \"%s\" can move to partner \"%s\" by transfer only with the consent of the holding partner and of the customer",
							service, customer, partner),
					 errdetail("No pending transfer from partner \"%s\" to subscription %s of partner \"%s\" has both consents.",
							   is_update ? overage_text_str(oldrow.partner_id, oldrow.partner_null) : "None",
							   overage_uuid_str(newrow.subscription_id, false),
							   partner),
					 errhint("Use overage.request_transfer() and overage.consent_transfer().")));

		/* rule: another partner's holding must first be set to None */
		if (!transfer && is_update && !oldrow.partner_null &&
			!text_datum_eq(oldrow.partner_id, false, newrow.partner_id, false))
			ereport(ERROR,
					(errcode(ERRCODE_OVERAGE_HELD_BY_OTHER),
					 errmsg("overage of service \"%s\" for customer \"%s\" is held by another partner",
							service, customer),
					 errdetail("Partner \"%s\" holds it (subscription %s) since %s; partner \"%s\" cannot take it over.",
							   TextDatumGetCString(oldrow.partner_id),
							   overage_uuid_str(oldrow.subscription_id, false),
							   overage_time_str(oldrow.since, false), partner),
					 errhint("The holding partner must first set the overage to None (overage.release_overage), or the partners and the customer agree on a transfer (overage.request_transfer).")));
	}

	SPI_finish();

	if (modified)
	{
		int			attnums[2];
		Datum		values[2] = {newrow.reason, newrow.reseller_id};
		bool		nulls[2] = {false, newrow.reseller_null};

		attnums[0] = SPI_fnumber(desc, "reason");
		attnums[1] = SPI_fnumber(desc, "reseller_id");
		if (attnums[0] <= 0)
			elog(ERROR, "column \"reason\" not found");
		return PointerGetDatum(heap_modify_tuple_by_cols(is_update ? trigdata->tg_newtuple : trigdata->tg_trigtuple,
														 desc, attnums[1] > 0 ? 2 : 1,
														 attnums, values, nulls));
	}

	return PointerGetDatum(is_update ? trigdata->tg_newtuple : trigdata->tg_trigtuple);
}

/*
 * holder_record
 *		AFTER INSERT OR UPDATE ON overage.holder FOR EACH ROW
 *
 * Runs only for rows that really changed (holder_guard returned the old
 * tuple for the others, and this trigger compares again).
 */
Datum
holder_record(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr reuse_plan = NULL;
	static SPIPlanPtr close_plan = NULL;
	static SPIPlanPtr open_plan = NULL;
	static SPIPlanPtr log_plan = NULL;
	static SPIPlanPtr supersede_plan = NULL;
	static SPIPlanPtr old_reuse_plan = NULL;
	static SPIPlanPtr old_open_plan = NULL;
	static SPIPlanPtr old_log_plan = NULL;
	bool		v12;
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TriggerEvent event;
	TupleDesc	desc;
	HolderRow	newrow;
	HolderRow	oldrow;
	bool		is_update;
	Oid			period_types[6] = {TEXTOID, TEXTOID, TEXTOID, UUIDOID, TIMESTAMPTZOID, TEXTOID};
	Datum		period_values[6];
	char		period_nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
	Oid			log_types[11] = {TEXTOID, TEXTOID, TEXTOID, UUIDOID, TEXTOID,
		UUIDOID, TIMESTAMPTZOID, NAMEOID, TEXTOID,
	TEXTOID, TEXTOID};
	Datum		log_values[11];
	char		log_nulls[11] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	Oid			sup_types[4] = {TEXTOID, TEXTOID, TIMESTAMPTZOID, NAMEOID};
	Datum		sup_values[4];
	NameData	role;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "holder_record: not called by trigger manager");
	event = trigdata->tg_event;
	if (!TRIGGER_FIRED_AFTER(event) || !TRIGGER_FIRED_FOR_ROW(event) ||
		!(TRIGGER_FIRED_BY_INSERT(event) || TRIGGER_FIRED_BY_UPDATE(event)))
		elog(ERROR, "holder_record: must be fired after insert or update, for each row");

	desc = trigdata->tg_relation->rd_att;
	is_update = TRIGGER_FIRED_BY_UPDATE(event);

	/* a restore loads holder_period and assignment_log themselves */
	if (!is_update && overage_restoring(trigdata->tg_relation))
		return PointerGetDatum(NULL);

	holder_row_read(is_update ? trigdata->tg_newtuple : trigdata->tg_trigtuple,
					desc, &newrow);
	if (is_update)
	{
		holder_row_read(trigdata->tg_trigtuple, desc, &oldrow);
		if (holder_same(&oldrow, &newrow))
			return PointerGetDatum(NULL);
	}

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/*
	 * The library serves every version of the extension's SQL: a database
	 * still at 1.0 or 1.1 (the library installed, ALTER EXTENSION UPDATE not
	 * yet run) has no reseller columns and no transfers.
	 */
	v12 = SPI_fnumber(desc, "reseller_id") > 0;

	period_values[0] = newrow.customer_id;
	period_values[1] = newrow.service_id;
	period_values[2] = newrow.partner_id;
	period_nulls[2] = newrow.partner_null ? 'n' : ' ';
	period_values[3] = newrow.subscription_id;
	period_nulls[3] = newrow.subscription_null ? 'n' : ' ';
	period_values[4] = newrow.since;
	period_values[5] = newrow.reseller_id;
	period_nulls[5] = newrow.reseller_null ? 'n' : ' ';

	/*
	 * A second change at the very instant the open period began replaces
	 * that (empty) period's holder; otherwise the open period ends where the
	 * new one begins.  Either way no two periods overlap.
	 */
	if (v12)
		overage_history_exec(&reuse_plan,
							 "UPDATE overage.holder_period"
							 "   SET partner_id = $3, subscription_id = $4, reseller_id = $6"
							 " WHERE customer_id = $1 AND service_id = $2"
							 "   AND valid_to IS NULL AND valid_from = $5",
							 6, period_types, period_values, period_nulls);
	else
		overage_history_exec(&old_reuse_plan,
							 "UPDATE overage.holder_period"
							 "   SET partner_id = $3, subscription_id = $4"
							 " WHERE customer_id = $1 AND service_id = $2"
							 "   AND valid_to IS NULL AND valid_from = $5",
							 5, period_types, period_values, period_nulls);
	if (SPI_processed == 0)
	{
		overage_history_exec(&close_plan,
							 "UPDATE overage.holder_period SET valid_to = $5"
							 " WHERE customer_id = $1 AND service_id = $2"
							 "   AND valid_to IS NULL",
							 6, period_types, period_values, period_nulls);
		if (v12)
			overage_history_exec(&open_plan,
								 "INSERT INTO overage.holder_period"
								 " (customer_id, service_id, partner_id, subscription_id, valid_from,"
								 "  reseller_id)"
								 " VALUES ($1, $2, $3, $4, $5, $6)",
								 6, period_types, period_values, period_nulls);
		else
			overage_history_exec(&old_open_plan,
								 "INSERT INTO overage.holder_period"
								 " (customer_id, service_id, partner_id, subscription_id, valid_from)"
								 " VALUES ($1, $2, $3, $4, $5)",
								 5, period_types, period_values, period_nulls);
	}

	/* the audit row */
	namestrcpy(&role, GetUserNameFromId(GetOuterUserId(), false));
	log_values[0] = newrow.customer_id;
	log_values[1] = newrow.service_id;
	if (is_update)
	{
		log_values[2] = oldrow.partner_id;
		log_nulls[2] = oldrow.partner_null ? 'n' : ' ';
		log_values[3] = oldrow.subscription_id;
		log_nulls[3] = oldrow.subscription_null ? 'n' : ' ';
		log_values[9] = oldrow.reseller_id;
		log_nulls[9] = oldrow.reseller_null ? 'n' : ' ';
	}
	else
	{
		log_values[2] = log_values[3] = log_values[9] = (Datum) 0;
		log_nulls[2] = log_nulls[3] = log_nulls[9] = 'n';
	}
	log_values[10] = newrow.reseller_id;
	log_nulls[10] = newrow.reseller_null ? 'n' : ' ';
	log_values[4] = newrow.partner_id;
	log_nulls[4] = newrow.partner_null ? 'n' : ' ';
	log_values[5] = newrow.subscription_id;
	log_nulls[5] = newrow.subscription_null ? 'n' : ' ';
	log_values[6] = newrow.since;
	log_values[7] = NameGetDatum(&role);
	log_values[8] = newrow.reason;

	if (!v12)
	{
		overage_history_exec(&old_log_plan,
							 "INSERT INTO overage.assignment_log"
							 " (customer_id, service_id, from_partner_id, from_subscription_id,"
							 "  to_partner_id, to_subscription_id, at, by_role, reason)"
							 " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
							 9, log_types, log_values, log_nulls);
		SPI_finish();
		return PointerGetDatum(NULL);
	}
	overage_history_exec(&log_plan,
						 "INSERT INTO overage.assignment_log"
						 " (customer_id, service_id, from_partner_id, from_subscription_id,"
						 "  to_partner_id, to_subscription_id, at, by_role, reason,"
						 "  from_reseller_id, to_reseller_id)"
						 " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
						 11, log_types, log_values, log_nulls);

	/*
	 * Any holder change but a transfer's own completion supersedes the
	 * pending transfer: its consents were given for the holder that was
	 * (expired instead when the change is at or after its expiry).
	 */
	if (strcmp(TextDatumGetCString(newrow.reason), "transfer") != 0)
	{
		sup_values[0] = newrow.customer_id;
		sup_values[1] = newrow.service_id;
		sup_values[2] = newrow.since;
		sup_values[3] = NameGetDatum(&role);
		overage_spi_exec(&supersede_plan,
						 "UPDATE overage.transfer t"
						 "   SET status = CASE WHEN t.expires_at <= $3"
						 "                     THEN 'expired' ELSE 'superseded' END,"
						 "       closed_at = least(t.expires_at, greatest($3, t.requested_at)),"
						 "       closed_by = $4"
						 " WHERE t.customer_id = $1 AND t.service_id = $2"
						 "   AND t.status = 'pending'",
						 4, sup_types, sup_values, NULL, 0);
	}

	SPI_finish();
	return PointerGetDatum(NULL);
}
