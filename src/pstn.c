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
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "port/pg_bswap.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/lsyscache.h"
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
PG_FUNCTION_INFO_V1(overage_pstn_store);

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
 * A response read: its good rows sorted in Graph id order (the response's
 * order within an id), their strings in the arena, and call_mapping's
 * kinds.
 */
typedef struct PstnRead
{
	PstnRow    *rows;
	size_t		nrows;
	PstnRow   **ids;			/* the first row of each id, in id order */
	int32	   *copies;			/* how many rows carry each id */
	size_t		nids;
	StringInfoData arena;
	PstnKinds	kinds;
} PstnRead;

/*
 * pstn_read
 *		Reads and checks every row of the response calls, refusing it as
 *		described at the top of this file, and sorts the good rows.
 */
static void
pstn_read(Jsonb *calls, PstnRead *out)
{
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

	MemoryContextDelete(rowcxt);
	pstn_sort_rows(rows, nrows);
	out->rows = rows;
	out->nrows = nrows;
	out->arena = arena;
	out->kinds = kinds;

	/* each id once: its first row in the response, and its copies */
	out->ids = palloc_extended(Max(nrows, 1) * sizeof(PstnRow *), MCXT_ALLOC_HUGE);
	out->copies = palloc_extended(Max(nrows, 1) * sizeof(int32), MCXT_ALLOC_HUGE);
	out->nids = 0;
	for (size_t i = 0; i < nrows;)
	{
		PstnRow    *r = &rows[i];
		int32		copies = 1;

		for (i++; i < nrows && rows[i].hi == r->hi && rows[i].lo == r->lo; i++)
			copies++;
		out->ids[out->nids] = r;
		out->copies[out->nids++] = copies;
	}
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
	PstnRead	in;

	overage_init_materialized_srf(fcinfo);
	pstn_read(calls, &in);
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "pstn row",
								   ALLOCSET_SMALL_SIZES);

	/*
	 * In Graph id order, the response's order within an id; a row whose id
	 * comes again later in the response is returned once, as it first
	 * came, with the number of its copies (so that the caller neither sorts
	 * nor de-duplicates, and counts the response's rows as sum(copies)).
	 */
	for (size_t i = 0; i < in.nids; i++)
	{
		PstnRow    *r = in.ids[i];
		Datum		values[PSTN_NCOLUMNS];
		bool		nulls[PSTN_NCOLUMNS] = {0};

		MemoryContextReset(rowcxt);
		old = MemoryContextSwitchTo(rowcxt);
		values[PSTN_CALL_ID] = UUIDPGetDatum(&r->call_id);
		values[PSTN_USER_ID] = PointerGetDatum(cstring_to_text_with_len(in.arena.data + r->user,
																		r->user_len));
		values[PSTN_STARTED_AT] = TimestampTzGetDatum(r->started_at);
		values[PSTN_DURATION_S] = Int32GetDatum(r->duration_s);
		values[PSTN_CALL_TYPE] = PointerGetDatum(cstring_to_text_with_len(in.arena.data + r->type,
																		  r->type_len));
		if (r->dc_len >= 0)
			values[PSTN_DESTINATION_CONTEXT] =
				PointerGetDatum(cstring_to_text_with_len(in.arena.data + r->dc,
														 r->dc_len));
		else
			nulls[PSTN_DESTINATION_CONTEXT] = true;
		values[PSTN_ORD] = Int64GetDatum(r->ord);
		values[PSTN_SERVICE_ID] = PointerGetDatum(in.kinds.kinds[r->kind].service_id);
		values[PSTN_COPIES] = Int32GetDatum(in.copies[i]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		MemoryContextSwitchTo(old);
	}

	MemoryContextDelete(rowcxt);
	return (Datum) 0;
}

/*
 * A new call, in usage_rating's order: month (UTC), service (its rank among
 * the services in byte order), start, usage_id.  The customer is the same
 * for all.
 */
typedef struct PstnNew
{
	int32		month;			/* year * 12 + month, UTC */
	int32		service;
	TimestampTz started_at;
	int64		usage_id;
	PstnRow    *row;
} PstnNew;

#define ST_SORT pstn_sort_new
#define ST_ELEMENT_TYPE PstnNew
#define ST_COMPARE(a, b) \
	((a)->month != (b)->month ? ((a)->month < (b)->month ? -1 : 1) : \
	 (a)->service != (b)->service ? ((a)->service < (b)->service ? -1 : 1) : \
	 (a)->started_at != (b)->started_at ? ((a)->started_at < (b)->started_at ? -1 : 1) : \
	 ((a)->usage_id > (b)->usage_id) - ((a)->usage_id < (b)->usage_id))
#define ST_SCOPE static
#define ST_DEFINE
#include "lib/sort_template.h"

static int
pstn_row_cmp(const void *a, const void *b)
{
	const PstnRow *x = *(PstnRow *const *) a;
	const PstnRow *y = *(PstnRow *const *) b;

	if (x->hi != y->hi)
		return x->hi < y->hi ? -1 : 1;
	return (x->lo > y->lo) - (x->lo < y->lo);
}

/* the index in ids[0..n) (sorted by id) of the row with call_id u, or -1 */
static ssize_t
pstn_find(PstnRow **ids, size_t n, pg_uuid_t *u)
{
	PstnRow		key;
	PstnRow    *k = &key;
	PstnRow   **hit;

	memcpy(&key.hi, u->data, sizeof(uint64));
	memcpy(&key.lo, u->data + sizeof(uint64), sizeof(uint64));
	key.hi = pg_ntoh64(key.hi);
	key.lo = pg_ntoh64(key.lo);
	hit = bsearch(&k, ids, n, sizeof(PstnRow *), pstn_row_cmp);
	return hit ? hit - ids : -1;
}

/* marks[k] for each id of the last SPI result (its first column) */
static void
pstn_mark_result(PstnRow **ids, size_t nids, bool *marks)
{
	for (uint64 j = 0; j < SPI_processed; j++)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[j], SPI_tuptable->tupdesc,
									  1, &isnull);
		ssize_t		k = pstn_find(ids, nids, DatumGetUUIDP(d));

		if (k < 0)
			elog(ERROR, "pstn_call gave an id the response does not hold");
		marks[k] = true;
	}
}

/*
 * overage_pstn_store
 *		_pstn_store(customer_id text, calls jsonb, retry boolean,
 *		OUT received bigint, OUT inserted bigint): stores the calls of the
 *		response, read by pstn_read, for ingest_pstn_calls (which checks the
 *		caller and the customer first): each id not stored yet into
 *		pstn_call, in Graph id order, and its call into usage, in
 *		usage_rating's order, both with one usage_id drawn from usage's
 *		identity.  Each write is one INSERT of arrays built here: no
 *		tuplestore of the rows, no sort by the executor.
 *
 *		retry false: a plain INSERT into pstn_call, which fails on
 *		pstn_call_pkey (23505) at an id stored already, or stored by a
 *		concurrent load once that one commits.  Only when the response's
 *		first, middle or last id is stored already (a response sent again)
 *		are the ids stored already looked for and left out first.  retry
 *		true (after such a failure): the ids stored already are left out,
 *		and the INSERT skips those a concurrent load stores meanwhile (ON
 *		CONFLICT DO NOTHING); usage gets the calls of the ids this one
 *		inserted.
 */
Datum
overage_pstn_store(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr probe_plan = NULL;
	static SPIPlanPtr existing_plan = NULL;
	static SPIPlanPtr pstn_plan = NULL;
	static SPIPlanPtr pstn_retry_plan = NULL;
	static SPIPlanPtr usage_plan = NULL;
	Datum		customer = PG_GETARG_DATUM(0);
	Jsonb	   *calls = PG_GETARG_JSONB_P(1);
	bool		retry = PG_GETARG_BOOL(2);
	bool		known = false;	/* some ids are stored already */
	TupleDesc	resdesc;
	Datum		result[2];
	bool		resnull[2] = {false, false};
	PstnRead	in;
	PstnRow   **ids;			/* the first row of each id, in id order */
	bool	   *skip;			/* stored already, or by another load */
	int64	   *usage_ids;
	PstnNew    *news;
	int32	   *service_rank;
	size_t		nids,
				nnew = 0;
	Datum	   *v1,
			   *v2,
			   *v3,
			   *v4;
	bool	   *n4;
	Oid			seq;

	if (get_call_result_type(fcinfo, NULL, &resdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "_pstn_store must return a record");
	resdesc = BlessTupleDesc(resdesc);

	pstn_read(calls, &in);
	ids = in.ids;
	nids = in.nids;
	skip = palloc0(Max(nids, 1));
	usage_ids = palloc_extended(Max(nids, 1) * sizeof(int64), MCXT_ALLOC_HUGE);
	v1 = palloc_extended(Max(nids, 3) * sizeof(Datum), MCXT_ALLOC_HUGE);	/* 3: the probe */
	v2 = palloc_extended(Max(nids, 1) * sizeof(Datum), MCXT_ALLOC_HUGE);
	v3 = palloc_extended(Max(nids, 1) * sizeof(Datum), MCXT_ALLOC_HUGE);
	v4 = palloc_extended(Max(nids, 1) * sizeof(Datum), MCXT_ALLOC_HUGE);
	n4 = palloc0(Max(nids, 1));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/*
	 * A response sent again: its first, middle and last ids are stored
	 * already.  Then the ids stored already are looked for first, rather
	 * than drawing a usage_id for every row and failing at the first.
	 */
	if (!retry && nids > 0)
	{
		Oid			argtypes[1] = {UUIDARRAYOID};
		Datum		args[1];

		v1[0] = UUIDPGetDatum(&ids[0]->call_id);
		v1[1] = UUIDPGetDatum(&ids[nids / 2]->call_id);
		v1[2] = UUIDPGetDatum(&ids[nids - 1]->call_id);
		args[0] = overage_array(v1, NULL, 3, UUIDOID);
		overage_spi_exec(&probe_plan,
						 "SELECT FROM overage.pstn_call p WHERE p.call_id = ANY ($1) LIMIT 1",
						 1, argtypes, args, NULL, 0);
		known = SPI_processed > 0;
	}
	if ((retry || known) && nids > 0)
	{
		Oid			argtypes[1] = {UUIDARRAYOID};
		Datum		args[1];

		for (size_t i = 0; i < nids; i++)
			v1[i] = UUIDPGetDatum(&ids[i]->call_id);
		args[0] = overage_array(v1, NULL, (int) nids, UUIDOID);
		overage_spi_exec(&existing_plan,
						 "SELECT p.call_id FROM overage.pstn_call p"
						 " WHERE p.call_id = ANY ($1)",
						 1, argtypes, args, NULL, 0);
		pstn_mark_result(ids, nids, skip);
	}

	/* usage_ids, in Graph id order, for the ids to insert */
	seq = DatumGetObjectId(DirectFunctionCall1(regclassin,
											   CStringGetDatum("overage.usage_usage_id_seq")));
	for (size_t i = 0; i < nids; i++)
	{
		PstnRow    *r = ids[i];

		if (skip[i])
			continue;
		usage_ids[i] = nextval_internal(seq, true);
		v1[nnew] = UUIDPGetDatum(&r->call_id);
		v2[nnew] = Int64GetDatum(usage_ids[i]);
		v3[nnew] = PointerGetDatum(cstring_to_text_with_len(in.arena.data + r->type,
															r->type_len));
		if (r->dc_len >= 0)
			v4[nnew] = PointerGetDatum(cstring_to_text_with_len(in.arena.data + r->dc,
																r->dc_len));
		else
			n4[nnew] = true;
		nnew++;
	}

	if (nnew > 0)
	{
		Oid			argtypes[5] = {TEXTOID, UUIDARRAYOID, INT8ARRAYOID,
		TEXTARRAYOID, TEXTARRAYOID};
		Datum		args[5];

		args[0] = customer;
		args[1] = overage_array(v1, NULL, (int) nnew, UUIDOID);
		args[2] = overage_array(v2, NULL, (int) nnew, INT8OID);
		args[3] = overage_array(v3, NULL, (int) nnew, TEXTOID);
		args[4] = overage_array(v4, n4, (int) nnew, TEXTOID);

#define PSTN_INSERT \
		"INSERT INTO overage.pstn_call (call_id, usage_id, customer_id, call_type," \
		" destination_context)" \
		" SELECT u.c, u.u, $1, u.t, u.d" \
		"   FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3)," \
		" pg_catalog.unnest($4), pg_catalog.unnest($5)) AS u(c, u, t, d)"

		if (!retry)
			overage_spi_exec(&pstn_plan, PSTN_INSERT, 5, argtypes, args, NULL, 0);
		else
		{
			/* by name: on a Citus cluster the key is (customer_id, call_id) */
			bool	   *stored = palloc0(nids);

			overage_spi_exec(&pstn_retry_plan,
							 PSTN_INSERT " ON CONFLICT ON CONSTRAINT pstn_call_pkey DO NOTHING"
							 " RETURNING call_id",
							 5, argtypes, args, NULL, 0);
			pstn_mark_result(ids, nids, stored);
			for (size_t i = 0; i < nids; i++)
				skip[i] = !stored[i];
		}
#undef PSTN_INSERT
	}

	/* their calls, in usage_rating's order */
	service_rank = palloc0(Max(in.kinds.nkinds, 1) * sizeof(int32));
	for (int a = 0; a < in.kinds.nkinds; a++)
	{
		text	   *sa = in.kinds.kinds[a].service_id;

		for (int b = 0; b < in.kinds.nkinds; b++)
		{
			text	   *sb = in.kinds.kinds[b].service_id;
			int			la = VARSIZE_ANY_EXHDR(sa),
						lb = VARSIZE_ANY_EXHDR(sb);
			int			c = memcmp(VARDATA_ANY(sb), VARDATA_ANY(sa), Min(la, lb));

			if (c < 0 || (c == 0 && lb < la))
				service_rank[a]++;
		}
	}
	news = palloc_extended(Max(nids, 1) * sizeof(PstnNew), MCXT_ALLOC_HUGE);
	nnew = 0;
	for (size_t i = 0; i < nids; i++)
	{
		struct pg_tm tm;
		fsec_t		fsec;

		if (skip[i])
			continue;
		if (timestamp2tm(ids[i]->started_at, NULL, &tm, &fsec, NULL, NULL) != 0)
			elog(ERROR, "timestamp out of range");
		news[nnew].month = tm.tm_year * MONTHS_PER_YEAR + tm.tm_mon;
		news[nnew].service = service_rank[ids[i]->kind];
		news[nnew].started_at = ids[i]->started_at;
		news[nnew].usage_id = usage_ids[i];
		news[nnew].row = ids[i];
		nnew++;
	}
	pstn_sort_new(news, nnew);

	if (nnew > 0)
	{
		Oid			argtypes[6] = {TEXTOID, INT8ARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
		TIMESTAMPTZARRAYOID, INT4ARRAYOID};
		Datum		args[6];
		Datum	   *v5 = palloc_extended(nnew * sizeof(Datum), MCXT_ALLOC_HUGE);

		for (size_t i = 0; i < nnew; i++)
		{
			PstnRow    *r = news[i].row;

			v1[i] = Int64GetDatum(news[i].usage_id);
			v2[i] = PointerGetDatum(in.kinds.kinds[r->kind].service_id);
			v3[i] = PointerGetDatum(cstring_to_text_with_len(in.arena.data + r->user,
															 r->user_len));
			v4[i] = TimestampTzGetDatum(r->started_at);
			v5[i] = Int32GetDatum(r->duration_s);
		}
		args[0] = customer;
		args[1] = overage_array(v1, NULL, (int) nnew, INT8OID);
		args[2] = overage_array(v2, NULL, (int) nnew, TEXTOID);
		args[3] = overage_array(v3, NULL, (int) nnew, TEXTOID);
		args[4] = overage_array(v4, NULL, (int) nnew, TIMESTAMPTZOID);
		args[5] = overage_array(v5, NULL, (int) nnew, INT4OID);
		overage_spi_exec(&usage_plan,
						 "INSERT INTO overage.usage"
						 " (usage_id, customer_id, service_id, user_id, started_at, duration_s)"
						 " OVERRIDING SYSTEM VALUE"
						 " SELECT u.i, $1, u.s, u.us, u.st, u.d"
						 "   FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3),"
						 " pg_catalog.unnest($4), pg_catalog.unnest($5),"
						 " pg_catalog.unnest($6)) AS u(i, s, us, st, d)",
						 6, argtypes, args, NULL, 0);
		if (SPI_processed != nnew)
			elog(ERROR, "usage took " UINT64_FORMAT " calls of %zu", SPI_processed, nnew);
	}
	SPI_finish();

	result[0] = Int64GetDatum((int64) in.nrows);
	result[1] = Int64GetDatum((int64) nnew);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(resdesc, result, resnull)));
}
