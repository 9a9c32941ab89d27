/*-------------------------------------------------------------------------
 *
 * pstn.c
 *	  Reading a Microsoft Graph getPstnCalls response for
 *	  ingest_pstn_calls (src/inputs.sql): overage._pstn_rows(calls jsonb)
 *	  walks the array of pstnCallLogRow once, checks every row, maps it to
 *	  its service and returns the rows typed in Graph id order, each id
 *	  once with its number of copies, or refuses the response.
 *
 * The checks are those ingest_pstn_calls made in PL/pgSQL before (three
 * passes over the array, regular expressions, about 30 us a row), in the
 * same order and with the same refusals:
 *
 *	  1. a document neither {"value": [...]} nor an array (22023);
 *	  2. every element an object: the first that is not is refused, whatever
 *		 the rows before it hold;
 *	  3. the first bad row in the response's order, its first bad property in
 *		 the order id, userId, startDateTime, duration, callType,
 *		 destinationContext (22023, 'pstnCallLogRow N of calls (id "..."):
 *		 property "..." ...', the value in the DETAIL);
 *	  4. the first kind (callType, destinationContext) without a row in
 *		 call_mapping, in that order (23503, with its number of rows).
 *
 * Nothing here throws on a bad value: the GUID, the ISO 8601 instant and
 * the duration are judged by hand (each as the regular expression and the
 * cast did; sql/pstn_rows.sql sets them beside the casts), so a date that
 * does not exist (February 30th) is refused as "is not a real instant" and
 * not as a raw datetime error.  call_mapping is read once (SPI).
 *
 * The good rows are kept in an array, their strings copied into one arena
 * in response order, then sorted (the rows themselves: sorting pointers and
 * reading the rows through them missed the cache on every row) and put in
 * the tuplestore (materialize mode).  A row's temporary memory is in a
 * context reset per row.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/xact.h"
#include "catalog/pg_collation.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "port/pg_bswap.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
#include "utils/uuid.h"
#include "utils/varlena.h"

#include "overage.h"
#include "spi_util.h"

PG_FUNCTION_INFO_V1(overage_pstn_rows);

/* the columns of _pstn_rows' result, in order */
enum
{
	PSTN_CALL_ID,
	PSTN_USER_ID,
	PSTN_STARTED_AT,
	PSTN_DURATION_S,
	PSTN_CALL_TYPE,
	PSTN_DESTINATION_CONTEXT,
	PSTN_ORD,
	PSTN_SERVICE_ID,
	PSTN_COPIES,
	PSTN_NCOLUMNS
};

/* a refused row: what the message names */
typedef struct PstnRefusal
{
	int64		ord;			/* position in the response, from 1 */
	JsonbValue *id;				/* the row's id, NULL when missing */
	const char *property;
	const char *why;
	JsonbValue *value;			/* the property's value, NULL when missing */
} PstnRefusal;

/* a good row; its strings copied in order (the sort must not read the
 * response at random) */
typedef struct PstnRow
{
	uint64		hi;				/* call_id's bytes 0-7 and 8-15, big-endian */
	uint64		lo;
	pg_uuid_t	call_id;
	int64		ord;
	TimestampTz started_at;
	int32		duration_s;
	int			user_len;
	int			type_len;
	int			dc_len;			/* -1: null or missing */
	int			kind;			/* in PstnKinds.kinds */
	int			user;			/* the strings: offsets in the arena */
	int			type;
	int			dc;
} PstnRow;

/*
 * Graph id order (the uuid as two integers that compare as its bytes do),
 * then the response's.  The rows themselves are sorted (typed swaps), so
 * that the rows are then read in order, not at random.
 */
#define ST_SORT pstn_sort_rows
#define ST_ELEMENT_TYPE PstnRow
#define ST_COMPARE(a, b) \
	((a)->hi != (b)->hi ? ((a)->hi < (b)->hi ? -1 : 1) : \
	 (a)->lo != (b)->lo ? ((a)->lo < (b)->lo ? -1 : 1) : \
	 ((a)->ord > (b)->ord) - ((a)->ord < (b)->ord))
#define ST_SCOPE static
#define ST_DEFINE
#include "lib/sort_template.h"

/*
 * A kind of call (callType, destinationContext): the service call_mapping
 * gives it, or none (unmapped).
 */
typedef struct PstnKind
{
	char	   *call_type;
	int			call_type_len;
	char	   *dc;				/* NULL: no destinationContext */
	int			dc_len;
	text	   *service_id;
} PstnKind;

typedef struct PstnKinds
{
	PstnKind   *kinds;			/* call_mapping's rows */
	int			nkinds;
	/* the first unmapped kind in (callType, destinationContext) order */
	PstnKind	unmapped;
	int64		unmapped_rows;	/* 0: every kind is mapped */
} PstnKinds;

/*
 * pstn_load_kinds
 *		call_mapping, read once (a handful of rows), in the statement's
 *		snapshot.
 */
static void
pstn_load_kinds(PstnKinds *k)
{
	MemoryContext fncxt = CurrentMemoryContext;

	memset(k, 0, sizeof(*k));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute("SELECT m.call_type, m.destination_context, m.service_id"
					"  FROM overage.call_mapping m", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "reading overage.call_mapping failed");
	k->nkinds = (int) SPI_processed;
	k->kinds = MemoryContextAllocZero(fncxt, Max(k->nkinds, 1) * sizeof(PstnKind));
	for (int i = 0; i < k->nkinds; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum		d;
		text	   *t;

		d = SPI_getbinval(tup, desc, 1, &isnull);
		t = DatumGetTextPP(d);
		k->kinds[i].call_type = MemoryContextStrdup(fncxt, text_to_cstring(t));
		k->kinds[i].call_type_len = VARSIZE_ANY_EXHDR(t);
		d = SPI_getbinval(tup, desc, 2, &isnull);
		if (!isnull)
		{
			t = DatumGetTextPP(d);
			k->kinds[i].dc = MemoryContextStrdup(fncxt, text_to_cstring(t));
			k->kinds[i].dc_len = VARSIZE_ANY_EXHDR(t);
		}
		d = SPI_getbinval(tup, desc, 3, &isnull);
		k->kinds[i].service_id = (text *) MemoryContextAlloc(fncxt, VARSIZE_ANY(DatumGetPointer(d)));
		memcpy(k->kinds[i].service_id, DatumGetPointer(d), VARSIZE_ANY(DatumGetPointer(d)));
	}
	SPI_finish();
}

/*
 * pstn_kind_cmp
 *		The order of ORDER BY call_type, destination_context (the database's
 *		collation, NULLs last).
 */
static int
pstn_kind_cmp(const char *t1, int l1, const char *d1, int dl1,
			  const char *t2, int l2, const char *d2, int dl2)
{
	int			c = varstr_cmp(t1, l1, t2, l2, DEFAULT_COLLATION_OID);

	if (c != 0)
		return c;
	if (d1 == NULL || d2 == NULL)
		return (d1 == NULL) - (d2 == NULL);
	return varstr_cmp(d1, dl1, d2, dl2, DEFAULT_COLLATION_OID);
}

/*
 * pstn_kind
 *		The kind of a row: its index in k->kinds, or -1 when unmapped (then
 *		counted if it is the first unmapped kind so far: whatever comes
 *		later, every row of the first kind overall is counted).
 */
static int
pstn_kind(PstnKinds *k, const char *type, int type_len, const char *dc, int dc_len)
{
	int			c;

	for (int i = 0; i < k->nkinds; i++)
	{
		PstnKind   *m = &k->kinds[i];

		if (m->call_type_len == type_len &&
			memcmp(m->call_type, type, type_len) == 0 &&
			(m->dc == NULL ? dc == NULL :
			 dc != NULL && m->dc_len == dc_len && memcmp(m->dc, dc, dc_len) == 0))
			return i;
	}
	c = k->unmapped_rows == 0 ? -1 :
		pstn_kind_cmp(type, type_len, dc, dc_len,
					  k->unmapped.call_type, k->unmapped.call_type_len,
					  k->unmapped.dc, k->unmapped.dc_len);
	if (c < 0)
	{
		k->unmapped.call_type = pnstrdup(type, type_len);
		k->unmapped.call_type_len = type_len;
		k->unmapped.dc = dc ? pnstrdup(dc, dc_len) : NULL;
		k->unmapped.dc_len = dc_len;
		k->unmapped_rows = 1;
	}
	else if (c == 0)
		k->unmapped_rows++;
	return -1;
}

/*
 * pstn_key
 *		The value of a key of a row object into *v; false when the key is
 *		missing or its value is JSON null (both "missing" to the refusal).
 */
static bool
pstn_key(JsonbContainer *row, const char *key, JsonbValue *v)
{
	if (getKeyJsonValueFromContainer(row, key, strlen(key), v) == NULL)
		return false;
	return v->type != jbvNull;
}

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * pstn_guid
 *		A GUID as Graph writes it: 32 hex digits in any case, in groups of 8,
 *		4, 4, 4, 12, each hyphen optional, the whole optionally in braces
 *		(both or neither).  Fills *uuid; false when s is not one.
 */
static bool
pstn_guid(const char *s, int len, pg_uuid_t *uuid)
{
	static const int group_end[] = {4, 6, 8, 10};	/* bytes before a '-' */
	const char *end = s + len;
	int			g = 0;

	if (len > 0 && s[0] == '{')
	{
		if (s[len - 1] != '}')
			return false;
		s++;
		end--;
	}
	for (int i = 0; i < UUID_LEN; i++)
	{
		int			hi,
					lo;

		if (end - s < 2)
			return false;
		hi = hex_value(s[0]);
		lo = hex_value(s[1]);
		if (hi < 0 || lo < 0)
			return false;
		uuid->data[i] = (unsigned char) ((hi << 4) | lo);
		s += 2;
		if (g < (int) lengthof(group_end) && i + 1 == group_end[g])
		{
			if (s < end && *s == '-')
				s++;
			g++;
		}
	}
	return s == end;
}

/* n ASCII digits at s, into *out; false if any is not a digit */
static bool
pstn_digits(const char *s, int n, int *out)
{
	int			v = 0;

	for (int i = 0; i < n; i++)
	{
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

typedef enum PstnInstant
{
	PSTN_INSTANT_OK,
	PSTN_INSTANT_NOT_ISO,		/* does not match the pattern */
	PSTN_INSTANT_NOT_REAL		/* matches, but is no instant */
} PstnInstant;

/*
 * pstn_instant
 *		startDateTime: ISO 8601 with a zone as Graph writes it, the pattern
 *		^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$
 *		(as the PL/pgSQL checked), then a real instant by the rules of
 *		timestamptz's input (year from 1, the month's days, hour 24 only as
 *		24:00:00, second 60, the fraction rounded to microseconds as
 *		ParseFractionalSecond does, a zone offset of at most 15:59).
 */
static PstnInstant
pstn_instant(const char *s, int len, TimestampTz *result)
{
	struct pg_tm tm;
	fsec_t		fsec = 0;
	int			tz = 0;
	int			pos = 19;

	memset(&tm, 0, sizeof(tm));
	if (len < 20 ||
		!pstn_digits(s, 4, &tm.tm_year) || s[4] != '-' ||
		!pstn_digits(s + 5, 2, &tm.tm_mon) || s[7] != '-' ||
		!pstn_digits(s + 8, 2, &tm.tm_mday) || s[10] != 'T' ||
		!pstn_digits(s + 11, 2, &tm.tm_hour) || s[13] != ':' ||
		!pstn_digits(s + 14, 2, &tm.tm_min) || s[16] != ':' ||
		!pstn_digits(s + 17, 2, &tm.tm_sec))
		return PSTN_INSTANT_NOT_ISO;
	if (s[pos] == '.')
	{
		char		frac[11];
		int			n = 0;

		while (pos + 1 + n < len && n < 10 &&
			   s[pos + 1 + n] >= '0' && s[pos + 1 + n] <= '9')
			n++;
		if (n < 1 || n > 9)
			return PSTN_INSTANT_NOT_ISO;
		frac[0] = '.';
		memcpy(frac + 1, s + pos + 1, n);
		frac[n + 1] = '\0';
		fsec = (fsec_t) rint(strtod(frac, NULL) * 1000000);
		pos += 1 + n;
	}
	if (pos == len - 1 && s[pos] == 'Z')
		tz = 0;
	else if (pos == len - 6 && (s[pos] == '+' || s[pos] == '-') &&
			 s[pos + 3] == ':')
	{
		int			hr,
					mn;

		if (!pstn_digits(s + pos + 1, 2, &hr) ||
			!pstn_digits(s + pos + 4, 2, &mn))
			return PSTN_INSTANT_NOT_ISO;
		if (hr > MAX_TZDISP_HOUR || mn >= MINS_PER_HOUR)
			return PSTN_INSTANT_NOT_REAL;
		/* PostgreSQL's tz is seconds west of Greenwich */
		tz = (hr * MINS_PER_HOUR + mn) * SECS_PER_MINUTE;
		if (s[pos] == '+')
			tz = -tz;
	}
	else
		return PSTN_INSTANT_NOT_ISO;

	/* ValidateDate and DecodeDateTime's checks */
	if (tm.tm_year < 1 || tm.tm_mon < 1 || tm.tm_mon > MONTHS_PER_YEAR ||
		tm.tm_mday < 1 ||
		tm.tm_mday > day_tab[isleap(tm.tm_year)][tm.tm_mon - 1] ||
		time_overflows(tm.tm_hour, tm.tm_min, tm.tm_sec, fsec))
		return PSTN_INSTANT_NOT_REAL;
	if (tm2timestamp(&tm, fsec, &tz, result) != 0 ||
		!IS_VALID_TIMESTAMP(*result))
		return PSTN_INSTANT_NOT_REAL;
	return PSTN_INSTANT_OK;
}

/*
 * pstn_duration
 *		duration: a JSON number that is a whole number of seconds, 1 to
 *		86400.  Returns NULL and *seconds, or why not (the checks in the
 *		order the PL/pgSQL made them: whole, positive, at most a day).
 */
static const char *
pstn_duration(Numeric num, int32 *seconds)
{
	/* no exponent, no insignificant zeros: "60", "-5", "60.5", "1e10" */
	char	   *s = numeric_normalize(num);
	size_t		len = strlen(s);
	int			v = 0;

	if (strchr(s, '.') != NULL)
		return "is not a whole number of seconds";
	if (s[0] == '-' || strcmp(s, "0") == 0)
		return "is not positive";
	if (len > 5 || !pstn_digits(s, (int) len, &v) || v > SECS_PER_DAY)
		return "is longer than 24 h (86400 s)";
	*seconds = v;
	return NULL;
}

/* a JSON value as the PL/pgSQL's "#>> '{}'" shows it (a string unquoted) */
static char *
pstn_value_text(JsonbValue *v)
{
	if (v->type == jbvString)
		return pnstrdup(v->val.string.val, v->val.string.len);
	if (v->type == jbvNumeric)
		return DatumGetCString(DirectFunctionCall1(numeric_out,
												   NumericGetDatum(v->val.numeric)));
	if (v->type == jbvBool)
		return pstrdup(v->val.boolean ? "true" : "false");
	return pstrdup(JsonbToCString(NULL, &JsonbValueToJsonb(v)->root, 0));
}

/* a JSON value as jsonb's text output shows it (a string quoted) */
static char *
pstn_value_json(JsonbValue *v)
{
	Jsonb	   *jb = JsonbValueToJsonb(v);

	return JsonbToCString(NULL, &jb->root, VARSIZE(jb));
}

/* the first n characters of s */
static char *
pstn_left(const char *s, int n)
{
	return pnstrdup(s, pg_mbcharcliplen(s, strlen(s), n));
}

static JsonbValue *
pstn_copy_value(JsonbValue *v)
{
	JsonbValue *copy = palloc(sizeof(JsonbValue));

	*copy = *v;
	return copy;
}

static void
pstn_refuse(PstnRefusal *r)
{
	char	   *id = r->id ? psprintf("\"%s\"", pstn_left(pstn_value_text(r->id), 60))
		: "missing";
	char	   *value = r->value ? pstn_left(pstn_value_json(r->value), 100)
		: "missing";

	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("pstnCallLogRow " INT64_FORMAT " of calls (id %s): property \"%s\" %s",
					r->ord, id, r->property, r->why),
			 errdetail("The value is %s.", value),
			 errhint("Nothing of the call records was written; correct the row and load the response again.")));
}

/*
 * pstn_array
 *		The array of rows of a getPstnCalls response ({"value": [...]}, other
 *		keys ignored) or of a bare array, without copying it; refuses any
 *		other document (22023).
 */
static JsonbContainer *
pstn_array(Jsonb *calls)
{
	JsonbValue	value;
	const char *type;

	if (JB_ROOT_IS_ARRAY(calls) && !JB_ROOT_IS_SCALAR(calls))
		return &calls->root;
	if (JB_ROOT_IS_OBJECT(calls) &&
		getKeyJsonValueFromContainer(&calls->root, "value", 5, &value) != NULL &&
		value.type == jbvBinary && JsonContainerIsArray(value.val.binary.data))
		return value.val.binary.data;

	/* jsonb_typeof's names */
	if (JB_ROOT_IS_OBJECT(calls))
		type = "object";
	else
	{
		JsonbValue *scalar = getIthJsonbValueFromContainer(&calls->root, 0);

		type = scalar->type == jbvString ? "string" :
			scalar->type == jbvNumeric ? "number" :
			scalar->type == jbvBool ? "boolean" : "null";
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("calls must be a getPstnCalls response or an array of pstnCallLogRow"),
			 errdetail("It is a JSON %s%s.", type,
					   JB_ROOT_IS_OBJECT(calls) ? " without an array \"value\"" : ""),
			 errhint("Pass the response body as it is: {\"value\": [{\"id\": ..., \"userId\": ..., \"startDateTime\": ..., \"duration\": ..., \"callType\": ..., \"destinationContext\": ...}, ...]}.")));
	return NULL;				/* keep the compiler quiet */
}

/*
 * overage_pstn_rows
 *		_pstn_rows(calls jsonb) RETURNS TABLE(call_id uuid, user_id text,
 *		started_at timestamptz, duration_s integer, call_type text,
 *		destination_context text, ord bigint, service_id text, copies
 *		integer): the rows of the response calls, checked and typed, in Graph
 *		id order, each id once (its first row; copies: how many rows of the
 *		response carry it).
 */
Datum
overage_pstn_rows(PG_FUNCTION_ARGS)
{
	Jsonb	   *calls = PG_GETARG_JSONB_P(0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext rowcxt,
				old;
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	elem;
	Interval	one_day = {0, 1, 0};
	TimestampTz limit;
	PstnRefusal bad = {0};
	PstnKinds	kinds;
	int64		ord = 0;
	size_t		nrows = 0,
				maxrows = 1024;
	PstnRow    *rows;
	StringInfoData arena;		/* the good rows' strings, in order */

	JsonbContainer *array = pstn_array(calls);

	overage_init_materialized_srf(fcinfo);
	pstn_load_kinds(&kinds);

	/* startDateTime at most one day after the transaction's now() */
	limit = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
													TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()),
													IntervalPGetDatum(&one_day)));

	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "pstn row",
								   ALLOCSET_SMALL_SIZES);
	rows = palloc_extended(maxrows * sizeof(PstnRow), MCXT_ALLOC_HUGE);
	initStringInfo(&arena);

	it = JsonbIteratorInit(array);
	while ((tok = JsonbIteratorNext(&it, &elem, true)) != WJB_DONE)
	{
		JsonbContainer *row;
		JsonbValue	id,
					user,
					start,
					duration,
					type,
					dc;
		bool		has_dc = false;
		pg_uuid_t	uuid;
		TimestampTz started = 0;
		int32		seconds = 0;
		PstnInstant instant = PSTN_INSTANT_OK;

		if (tok != WJB_ELEM)
			continue;
		ord++;

		/* a row that is not an object: refused before any other */
		if (elem.type != jbvBinary || !JsonContainerIsObject(elem.val.binary.data))
		{
			bad.ord = ord;
			bad.id = NULL;
			bad.property = "id";
			bad.why = "is missing: the row is not an object";
			bad.value = &elem;
			pstn_refuse(&bad);
		}
		/* after a bad row, only rows that are not objects matter */
		if (bad.ord != 0)
			continue;

		row = elem.val.binary.data;
		MemoryContextReset(rowcxt);
		old = MemoryContextSwitchTo(rowcxt);

#define PSTN_BAD(prop, v, reason) \
		do { \
			bad.ord = ord; \
			bad.property = (prop); \
			bad.value = (v); \
			bad.why = (reason); \
		} while (0)

		bad.id = NULL;
		if (!pstn_key(row, "id", &id))
			PSTN_BAD("id", NULL, "is missing or null");
		else if ((bad.id = &id)->type != jbvString)
			PSTN_BAD("id", &id, "is not a string");
		else if (!pstn_guid(id.val.string.val, id.val.string.len, &uuid))
			PSTN_BAD("id", &id, "is not a GUID");
		else if (!pstn_key(row, "userId", &user))
			PSTN_BAD("userId", NULL, "is missing or null");
		else if (user.type != jbvString)
			PSTN_BAD("userId", &user, "is not a string");
		else if (user.val.string.len == 0)
			PSTN_BAD("userId", &user, "is empty");
		else if (!pstn_key(row, "startDateTime", &start))
			PSTN_BAD("startDateTime", NULL, "is missing or null");
		else if (start.type != jbvString)
			PSTN_BAD("startDateTime", &start, "is not a string");
		else if ((instant = pstn_instant(start.val.string.val, start.val.string.len,
										 &started)) == PSTN_INSTANT_NOT_ISO)
			PSTN_BAD("startDateTime", &start, "is not an ISO 8601 instant with a zone");
		else if (instant == PSTN_INSTANT_NOT_REAL)
			PSTN_BAD("startDateTime", &start, "is not a real instant");
		else if (started > limit)
			PSTN_BAD("startDateTime", &start, "is more than a day after now()");
		else if (!pstn_key(row, "duration", &duration))
			PSTN_BAD("duration", NULL, "is missing or null");
		else if (duration.type != jbvNumeric)
			PSTN_BAD("duration", &duration, "is not a number");
		else if ((bad.why = pstn_duration(duration.val.numeric, &seconds)) != NULL)
			PSTN_BAD("duration", &duration, bad.why);
		else if (!pstn_key(row, "callType", &type))
			PSTN_BAD("callType", NULL, "is missing or null");
		else if (type.type != jbvString)
			PSTN_BAD("callType", &type, "is not a string");
		else if ((has_dc = pstn_key(row, "destinationContext", &dc)) &&
				 dc.type != jbvString)
			PSTN_BAD("destinationContext", &dc, "is not a string or null");

#undef PSTN_BAD

		MemoryContextSwitchTo(old);
		if (bad.ord != 0)
		{
			/* kept until the end of the array: a non-object comes first */
			if (bad.id)
				bad.id = pstn_copy_value(bad.id);
			if (bad.value)
				bad.value = pstn_copy_value(bad.value);
			continue;
		}

		if (nrows == maxrows)
		{
			maxrows *= 2;
			rows = repalloc_huge(rows, maxrows * sizeof(PstnRow));
		}
		rows[nrows].call_id = uuid;
		rows[nrows].kind = pstn_kind(&kinds, type.val.string.val, type.val.string.len,
									 has_dc ? dc.val.string.val : NULL,
									 has_dc ? dc.val.string.len : 0);
		memcpy(&rows[nrows].hi, uuid.data, sizeof(uint64));
		memcpy(&rows[nrows].lo, uuid.data + sizeof(uint64), sizeof(uint64));
		rows[nrows].hi = pg_ntoh64(rows[nrows].hi);
		rows[nrows].lo = pg_ntoh64(rows[nrows].lo);
		rows[nrows].ord = ord;
		rows[nrows].started_at = started;
		rows[nrows].duration_s = seconds;
		rows[nrows].user = arena.len;
		rows[nrows].user_len = user.val.string.len;
		appendBinaryStringInfoNT(&arena, user.val.string.val, user.val.string.len);
		rows[nrows].type = arena.len;
		rows[nrows].type_len = type.val.string.len;
		appendBinaryStringInfoNT(&arena, type.val.string.val, type.val.string.len);
		rows[nrows].dc = arena.len;
		rows[nrows].dc_len = has_dc ? dc.val.string.len : -1;
		if (has_dc)
			appendBinaryStringInfoNT(&arena, dc.val.string.val, dc.val.string.len);
		nrows++;
	}

	if (bad.ord != 0)
		pstn_refuse(&bad);
	if (kinds.unmapped_rows != 0)
		ereport(ERROR,
				(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
				 errmsg("call kind callType \"%s\", destinationContext %s is not mapped to a service",
						kinds.unmapped.call_type,
						kinds.unmapped.dc ? psprintf("\"%s\"", kinds.unmapped.dc) : "null"),
				 errdetail("%lld row%s of the response are of that kind; nothing was written.",
						   (long long) kinds.unmapped_rows,
						   kinds.unmapped_rows == 1 ? "" : "s"),
				 errhint("Map the kind first: INSERT INTO overage.call_mapping (call_type, destination_context, service_id) VALUES (...).")));

	/*
	 * In Graph id order, the response's order within an id; a row whose id
	 * comes again later in the response is returned once, as it first
	 * came, with the number of its copies (so that the caller neither sorts
	 * nor de-duplicates, and counts the response's rows as sum(copies)).
	 */
	pstn_sort_rows(rows, nrows);
	for (size_t i = 0; i < nrows;)
	{
		PstnRow    *r = &rows[i];
		Datum		values[PSTN_NCOLUMNS];
		bool		nulls[PSTN_NCOLUMNS] = {0};
		int32		copies = 1;

		for (i++; i < nrows && rows[i].hi == r->hi && rows[i].lo == r->lo; i++)
			copies++;

		MemoryContextReset(rowcxt);
		old = MemoryContextSwitchTo(rowcxt);
		values[PSTN_CALL_ID] = UUIDPGetDatum(&r->call_id);
		values[PSTN_USER_ID] = PointerGetDatum(cstring_to_text_with_len(arena.data + r->user,
																		r->user_len));
		values[PSTN_STARTED_AT] = TimestampTzGetDatum(r->started_at);
		values[PSTN_DURATION_S] = Int32GetDatum(r->duration_s);
		values[PSTN_CALL_TYPE] = PointerGetDatum(cstring_to_text_with_len(arena.data + r->type,
																		  r->type_len));
		if (r->dc_len >= 0)
			values[PSTN_DESTINATION_CONTEXT] =
				PointerGetDatum(cstring_to_text_with_len(arena.data + r->dc,
														 r->dc_len));
		else
			nulls[PSTN_DESTINATION_CONTEXT] = true;
		values[PSTN_ORD] = Int64GetDatum(r->ord);
		values[PSTN_SERVICE_ID] = PointerGetDatum(kinds.kinds[r->kind].service_id);
		values[PSTN_COPIES] = Int32GetDatum(copies);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		MemoryContextSwitchTo(old);
	}

	MemoryContextDelete(rowcxt);
	return (Datum) 0;
}
