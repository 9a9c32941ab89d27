/*-------------------------------------------------------------------------
 *
 * subscription.c
 *	  Triggers on overage.subscription.
 *
 *	  subscription_guard (BEFORE ROW)
 *		- rows are never deleted (the pool and the bills are computed from
 *		  them); cancel instead;
 *		- the identity of a subscription (partner, customer, kind, SKU,
 *		  creation, plan) never changes;
 *		- changed_at never goes backwards (OV005); a cancelled subscription
 *		  stays cancelled and keeps its quantity;
 *		- a subscription that currently receives a customer's overage cannot
 *		  be cancelled: the holder must move it or set it to None first;
 *		- no creation or change dated inside a closed month (OV006): the
 *		  pool that month was billed on stays as it was.
 *
 *	  subscription_record (AFTER ROW)
 *		- keeps overage.license_quantity, the quantity of each licence over
 *		  time, which the pool at an instant is computed from;
 *		- when a licence ends and it was the holder's last licence enabling
 *		  overage of a service for that customer, sets that overage to None
 *		  (reason licence-ended), whatever path cancelled it.
 *
 *	  Rows that pg_dump reloads (restore.c) pass both as they are.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "overage.h"
#include "restore.h"
#include "guard.h"
#include "holder.h"
#include "month.h"
#include "spi_util.h"

PG_FUNCTION_INFO_V1(subscription_guard);
PG_FUNCTION_INFO_V1(subscription_record);

/* columns that identify a subscription and never change */
static const char *const immutable_columns[] = {
	"subscription_id", "partner_id", "customer_id", "kind", "product_id",
	"sku_id", "created_at", "parent_id"
};

/* text form of a column, NULL for SQL NULL; for comparisons and messages */
static char *
column_str(HeapTuple tuple, TupleDesc desc, const char *name)
{
	int			attnum = SPI_fnumber(desc, name);

	if (attnum <= 0)
		elog(ERROR, "column \"%s\" not found", name);
	return SPI_getvalue(tuple, desc, attnum);
}

static bool
str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static TimestampTz
column_time(HeapTuple tuple, TupleDesc desc, const char *name, bool *isnull)
{
	return DatumGetTimestampTz(overage_attr(tuple, desc, name, isnull));
}

/*
 * refuse_cancel_of_holder
 *		A subscription that receives a customer's overage cannot end.
 */
static void
refuse_cancel_of_holder(Datum subscription_id, Datum customer_id, const char *sub)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[2] = {UUIDOID, TEXTOID};
	Datum		values[2] = {subscription_id, customer_id};

	/*
	 * A subscription holds only its own customer's overage (the holder
	 * trigger checks it), so the customer narrows the search to its rows:
	 * one shard on a Citus cluster.
	 */
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	overage_spi_exec(&plan,
					 "SELECT customer_id, service_id FROM overage.holder"
					 " WHERE customer_id = $2 AND subscription_id = $1"
					 " ORDER BY service_id LIMIT 1",
					 2, argtypes, values, NULL, 1);
	if (SPI_processed > 0)
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;

		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("subscription \"%s\" receives overage and cannot be cancelled", sub),
				 errdetail("It holds the overage of service \"%s\" for customer \"%s\".",
						   column_str(tup, desc, "service_id"),
						   column_str(tup, desc, "customer_id")),
				 errhint("Assign the overage to another subscription or set it to None first.")));
	}
	SPI_finish();
}

/*
 * subscription_guard
 *		BEFORE INSERT OR UPDATE OR DELETE ON overage.subscription FOR EACH ROW
 */
Datum
subscription_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TriggerEvent event;
	TupleDesc	desc;
	HeapTuple	oldtup;
	HeapTuple	newtup;
	char	   *sub;
	char	   *old_status;
	char	   *new_status;
	TimestampTz old_changed;
	TimestampTz new_changed;
	bool		isnull;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "subscription_guard: not called by trigger manager");
	event = trigdata->tg_event;
	if (!TRIGGER_FIRED_BEFORE(event) || !TRIGGER_FIRED_FOR_ROW(event))
		elog(ERROR, "subscription_guard: must be fired before event, for each row");

	desc = trigdata->tg_relation->rd_att;

	if (TRIGGER_FIRED_BY_INSERT(event))
	{
		HeapTuple	tup = trigdata->tg_trigtuple;
		TimestampTz t;
		char	   *what;

		/* pg_dump's reload: judged when first written (restore.c) */
		if (overage_restoring(trigdata->tg_relation))
			return PointerGetDatum(tup);

		/* a subscription created (or ended) in a closed month */
		what = psprintf("the creation of a %s subscription of partner \"%s\" for customer \"%s\"",
					   column_str(tup, desc, "kind"),
					   column_str(tup, desc, "partner_id"),
					   column_str(tup, desc, "customer_id"));
		t = column_time(tup, desc, "created_at", &isnull);
		if (!isnull)
			overage_refuse_closed_month(t, what);
		t = column_time(tup, desc, "ended_at", &isnull);
		if (!isnull)
			overage_refuse_closed_month(t, what);
		return PointerGetDatum(tup);
	}

	oldtup = trigdata->tg_trigtuple;
	sub = column_str(oldtup, desc, "subscription_id");

	if (TRIGGER_FIRED_BY_DELETE(event))
		ereport(ERROR,
				(errcode(ERRCODE_OVERAGE_HISTORY_READONLY),
				 errmsg("subscription \"%s\" cannot be deleted", sub),
				 errdetail("Subscriptions are billing history: pools and charges of past months are computed from them."),
				 errhint("Use overage.cancel() to end a subscription.")));

	if (!TRIGGER_FIRED_BY_UPDATE(event))
		elog(ERROR, "subscription_guard: unsupported trigger event");

	newtup = trigdata->tg_newtuple;

	for (int i = 0; i < (int) lengthof(immutable_columns); i++)
	{
		if (!str_eq(column_str(oldtup, desc, immutable_columns[i]),
					column_str(newtup, desc, immutable_columns[i])))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("column \"%s\" of subscription \"%s\" cannot change",
							immutable_columns[i], sub)));
	}

	old_changed = column_time(oldtup, desc, "changed_at", &isnull);
	new_changed = column_time(newtup, desc, "changed_at", &isnull);
	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("subscription \"%s\" needs an instant in \"changed_at\"", sub)));
	if (new_changed < old_changed)
		ereport(ERROR,
				(errcode(ERRCODE_OVERAGE_TIME_BACKWARDS),
				 errmsg("subscription \"%s\" cannot change at %s, before its last change",
						sub, timestamptz_to_str(new_changed)),
				 errdetail("The last change was at %s.", timestamptz_to_str(old_changed))));

	old_status = column_str(oldtup, desc, "status");
	new_status = column_str(newtup, desc, "status");

	/*
	 * A change (of quantity, status, end or instant) dated in a closed month
	 * would rewrite the pool that month was billed on.  A no-op UPDATE
	 * changes no history and passes.
	 */
	if (new_changed != old_changed ||
		!str_eq(old_status, new_status) ||
		!str_eq(column_str(oldtup, desc, "quantity"),
				column_str(newtup, desc, "quantity")) ||
		!str_eq(column_str(oldtup, desc, "ended_at"),
				column_str(newtup, desc, "ended_at")))
	{
		TimestampTz ended = column_time(newtup, desc, "ended_at", &isnull);

		overage_refuse_closed_month(new_changed,
									psprintf("the change of subscription \"%s\"", sub));
		if (!isnull && ended != new_changed &&
			!str_eq(column_str(oldtup, desc, "ended_at"),
					column_str(newtup, desc, "ended_at")))
			overage_refuse_closed_month(ended,
										psprintf("the end of subscription \"%s\"", sub));
	}

	if (str_eq(old_status, "cancelled"))
	{
		if (!str_eq(new_status, "cancelled"))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("cancelled subscription \"%s\" cannot be reactivated", sub),
					 errhint("Purchase a new subscription.")));
		if (!str_eq(column_str(oldtup, desc, "quantity"),
					column_str(newtup, desc, "quantity")) ||
			!str_eq(column_str(oldtup, desc, "ended_at"),
					column_str(newtup, desc, "ended_at")))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("subscription \"%s\" is cancelled and cannot change", sub)));
	}
	else if (str_eq(new_status, "cancelled"))
	{
		TimestampTz ended = column_time(newtup, desc, "ended_at", &isnull);

		if (!isnull && ended < old_changed)
			ereport(ERROR,
					(errcode(ERRCODE_OVERAGE_TIME_BACKWARDS),
					 errmsg("subscription \"%s\" cannot end at %s, before its last change",
							sub, timestamptz_to_str(ended)),
					 errdetail("The last change was at %s.", timestamptz_to_str(old_changed))));

		refuse_cancel_of_holder(overage_attr(oldtup, desc, "subscription_id", &isnull),
								overage_attr(oldtup, desc, "customer_id", &isnull), sub);
	}

	return PointerGetDatum(newtup);
}

/*
 * release_if_last_license
 *		The licence "license" of partner for customer ended at "ended".  For
 *		every service its SKU enables overage for, in service order (the
 *		lock order purchase uses too), lock the holder row; if this partner
 *		holds the overage and has no other eligible licence at that instant,
 *		set it to None.  The holder triggers write history and audit.
 */
static void
release_if_last_license(Datum partner_id, Datum customer_id,
						Datum product_id, Datum sku_id, Datum ended)
{
	static SPIPlanPtr services_plan = NULL;
	static SPIPlanPtr lock_plan = NULL;
	static SPIPlanPtr release_plan = NULL;
	Oid			svc_types[2] = {TEXTOID, TEXTOID};
	Datum		svc_values[2] = {product_id, sku_id};
	SPITupleTable *services;
	uint64		nservices;

	overage_spi_exec(&services_plan,
					 "SELECT ss.service_id FROM overage.sku_service ss"
					 "  JOIN overage.sku k"
					 "    ON k.product_id = ss.product_id AND k.sku_id = ss.sku_id"
					 " WHERE ss.product_id = $1 AND ss.sku_id = $2"
					 "   AND k.includes_overage"
					 " ORDER BY ss.service_id",
					 2, svc_types, svc_values, NULL, 0);
	services = SPI_tuptable;
	nservices = SPI_processed;

	for (uint64 i = 0; i < nservices; i++)
	{
		bool		isnull;
		Datum		service_id = SPI_getbinval(services->vals[i], services->tupdesc, 1, &isnull);
		Oid			lock_types[2] = {TEXTOID, TEXTOID};
		Datum		lock_values[2] = {customer_id, service_id};
		Oid			rel_types[3] = {TEXTOID, TEXTOID, TIMESTAMPTZOID};
		Datum		rel_values[3] = {customer_id, service_id, ended};
		Datum		holder_partner;

		overage_spi_exec(&lock_plan,
						 "SELECT partner_id FROM overage.holder"
						 " WHERE customer_id = $1 AND service_id = $2 FOR UPDATE",
						 2, lock_types, lock_values, NULL, 1);
		if (SPI_processed == 0)
			continue;
		holder_partner = SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1, &isnull);
		if (isnull ||
			!DatumGetBool(DirectFunctionCall2Coll(texteq, C_COLLATION_OID, holder_partner, partner_id)))
			continue;
		if (overage_partner_eligible(partner_id, customer_id, service_id, ended))
			continue;

		overage_spi_exec(&release_plan,
						 "UPDATE overage.holder"
						 "   SET partner_id = NULL, subscription_id = NULL,"
						 "       since = $3, reason = 'licence-ended'"
						 " WHERE customer_id = $1 AND service_id = $2",
						 3, rel_types, rel_values, NULL, 0);
	}
}

/*
 * The statements on license_quantity: [1] for 1.2's table, by the licence's
 * customer too (one shard on a Citus cluster); [0] for a database still at
 * 1.0 or 1.1, whose table has no customer_id.  $1 subscription_id,
 * $2 valid_from or the instant, $3 valid_to, $4 quantity, $5 customer_id.
 */
static const char *const lq_insert[2] = {
	"INSERT INTO overage.license_quantity (subscription_id, valid_from, valid_to, quantity) VALUES ($1, $2, $3, $4)",
	"INSERT INTO overage.license_quantity (subscription_id, valid_from, valid_to, quantity, customer_id) VALUES ($1, $2, $3, $4, $5)"
};
static const char *const lq_same_instant[2] = {
	"UPDATE overage.license_quantity SET quantity = $4 WHERE subscription_id = $1 AND valid_to IS NULL AND valid_from = $2",
	"UPDATE overage.license_quantity SET quantity = $4 WHERE customer_id = $5 AND subscription_id = $1 AND valid_to IS NULL AND valid_from = $2"
};
static const char *const lq_close[2] = {
	"UPDATE overage.license_quantity SET valid_to = $2 WHERE subscription_id = $1 AND valid_to IS NULL",
	"UPDATE overage.license_quantity SET valid_to = $2 WHERE customer_id = $5 AND subscription_id = $1 AND valid_to IS NULL"
};
static const char *const lq_drop_empty[2] = {
	"DELETE FROM overage.license_quantity WHERE subscription_id = $1 AND valid_to IS NULL AND valid_from >= $2",
	"DELETE FROM overage.license_quantity WHERE customer_id = $5 AND subscription_id = $1 AND valid_to IS NULL AND valid_from >= $2"
};

/*
 * subscription_record
 *		AFTER INSERT OR UPDATE ON overage.subscription FOR EACH ROW
 */
Datum
subscription_record(PG_FUNCTION_ARGS)
{
	/* [1]: 1.2's license_quantity, with customer_id; [0]: 1.0's and 1.1's */
	static SPIPlanPtr insert_plan[2] = {NULL, NULL};
	static SPIPlanPtr same_instant_plan[2] = {NULL, NULL};
	static SPIPlanPtr close_plan[2] = {NULL, NULL};
	static SPIPlanPtr drop_empty_plan[2] = {NULL, NULL};
	int			v;
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TriggerEvent event;
	TupleDesc	desc;
	HeapTuple	newtup;
	HeapTuple	oldtup;
	bool		isnull;
	bool		ended_null;
	Datum		subscription_id;
	Datum		quantity;
	Datum		created_at;
	Datum		changed_at;
	Datum		ended_at;
	Oid			qty_types[5] = {UUIDOID, TIMESTAMPTZOID, TIMESTAMPTZOID, INT4OID, TEXTOID};
	Datum		qty_values[5];
	char		qty_nulls[5] = {' ', ' ', ' ', ' ', ' '};
	char	   *kind;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "subscription_record: not called by trigger manager");
	event = trigdata->tg_event;
	if (!TRIGGER_FIRED_AFTER(event) || !TRIGGER_FIRED_FOR_ROW(event) ||
		!(TRIGGER_FIRED_BY_INSERT(event) || TRIGGER_FIRED_BY_UPDATE(event)))
		elog(ERROR, "subscription_record: must be fired after insert or update, for each row");

	desc = trigdata->tg_relation->rd_att;
	newtup = TRIGGER_FIRED_BY_UPDATE(event) ? trigdata->tg_newtuple : trigdata->tg_trigtuple;
	oldtup = TRIGGER_FIRED_BY_UPDATE(event) ? trigdata->tg_trigtuple : NULL;

	kind = column_str(newtup, desc, "kind");
	if (!str_eq(kind, "license"))
		return PointerGetDatum(NULL);

	/* a restore loads license_quantity itself (restore.c) */
	if (oldtup == NULL && overage_restoring(trigdata->tg_relation))
		return PointerGetDatum(NULL);

	subscription_id = overage_attr(newtup, desc, "subscription_id", &isnull);
	quantity = overage_attr(newtup, desc, "quantity", &isnull);
	created_at = overage_attr(newtup, desc, "created_at", &isnull);
	changed_at = overage_attr(newtup, desc, "changed_at", &isnull);
	ended_at = overage_attr(newtup, desc, "ended_at", &ended_null);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/*
	 * $5, the licence's customer: the rows are the customer's (and a Citus
	 * cluster finds them on the customer's shard, README "Scaling out")
	 */
	v = overage_has_column("license_quantity", "customer_id") ? 1 : 0;
	qty_values[0] = subscription_id;
	qty_values[2] = (Datum) 0;
	qty_values[3] = quantity;
	qty_values[4] = overage_attr(newtup, desc, "customer_id", &isnull);

	if (oldtup == NULL)
	{
		/* a new licence: its first quantity period */
		if (ended_null ||
			DatumGetTimestampTz(ended_at) > DatumGetTimestampTz(created_at))
		{
			qty_values[1] = created_at;
			qty_values[2] = ended_at;
			qty_nulls[2] = ended_null ? 'n' : ' ';
			overage_history_exec(&insert_plan[v], lq_insert[v],
								 5, qty_types, qty_values, qty_nulls);
		}
	}
	else
	{
		bool		was_cancelled = str_eq(column_str(oldtup, desc, "status"), "cancelled");
		bool		now_cancelled = str_eq(column_str(newtup, desc, "status"), "cancelled");

		if (!was_cancelled &&
			!str_eq(column_str(oldtup, desc, "quantity"),
					column_str(newtup, desc, "quantity")))
		{
			/* quantity changes at changed_at */
			qty_values[1] = changed_at;
			qty_values[2] = (Datum) 0;
			qty_nulls[2] = 'n';
			overage_history_exec(&same_instant_plan[v], lq_same_instant[v],
								 5, qty_types, qty_values, qty_nulls);
			if (SPI_processed == 0)
			{
				overage_history_exec(&close_plan[v], lq_close[v],
									 5, qty_types, qty_values, qty_nulls);
				overage_history_exec(&insert_plan[v], lq_insert[v],
									 5, qty_types, qty_values, qty_nulls);
			}
		}

		if (!was_cancelled && now_cancelled)
		{
			/* the open period ends; an empty one (same instant) goes */
			qty_values[1] = ended_at;
			overage_history_exec(&drop_empty_plan[v], lq_drop_empty[v],
								 5, qty_types, qty_values, qty_nulls);
			overage_history_exec(&close_plan[v], lq_close[v],
								 5, qty_types, qty_values, qty_nulls);

			release_if_last_license(overage_attr(newtup, desc, "partner_id", &isnull),
									overage_attr(newtup, desc, "customer_id", &isnull),
									overage_attr(newtup, desc, "product_id", &isnull),
									overage_attr(newtup, desc, "sku_id", &isnull),
									ended_at);
		}
	}

	SPI_finish();
	return PointerGetDatum(NULL);
}
