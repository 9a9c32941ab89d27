/*-------------------------------------------------------------------------
 *
 * tags.c
 *	  The price list's Tags column and the IncludeOverage tag.
 *
 * A price list row carries a list of tags in one text value.  Offers that
 * carry overage are tagged "IncludeOverage"; Partner Center's own documents
 * also spell it "IncludesOverage" (SPEC 1.2), and both mark an overage SKU.
 * This file decides, for one Tags value, whether either tag is present:
 *
 *	  - tags are separated by ';' or ',';
 *	  - whitespace around a tag is ignored;
 *	  - the whole tag must equal "IncludeOverage" or "IncludesOverage",
 *		compared without regard to ASCII case ("NoIncludeOverage",
 *		"IncludeOverages" and "IncludessOverage" are other tags).
 *
 * The scan looks at each byte of the value exactly once and never past its
 * length; the value need not be NUL-terminated (it is a varlena).  Bytes of
 * multibyte characters are >= 0x80 and can never be separators, whitespace or
 * part of the tag, so no encoding awareness is needed.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"

#include "overage.h"

PG_FUNCTION_INFO_V1(tags_include_overage);

/* the two spellings of the tag */
#define OVERAGE_TAG		"IncludeOverage"
#define OVERAGE_TAG_LEN (sizeof(OVERAGE_TAG) - 1)
#define OVERAGE_TAG2	"IncludesOverage"
#define OVERAGE_TAG2_LEN (sizeof(OVERAGE_TAG2) - 1)

static inline bool
tag_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
		c == '\v' || c == '\f';
}

/*
 * overage_tags_contain_overage
 *		True if the tag list in buf[0..len) holds the IncludeOverage tag in
 *		either spelling.
 */
static bool
overage_tags_contain_overage(const char *buf, size_t len)
{
	size_t		pos = 0;

	while (pos < len)
	{
		size_t		start;
		size_t		end;

		/* one tag: [start, end) before the next separator or the end */
		start = pos;
		while (pos < len && buf[pos] != ';' && buf[pos] != ',')
			pos++;
		end = pos;

		/* step over the separator, if any */
		if (pos < len)
			pos++;

		while (start < end && tag_is_space(buf[start]))
			start++;
		while (end > start && tag_is_space(buf[end - 1]))
			end--;

		if (end - start == OVERAGE_TAG_LEN &&
			pg_strncasecmp(buf + start, OVERAGE_TAG, OVERAGE_TAG_LEN) == 0)
			return true;
		if (end - start == OVERAGE_TAG2_LEN &&
			pg_strncasecmp(buf + start, OVERAGE_TAG2, OVERAGE_TAG2_LEN) == 0)
			return true;
	}
	return false;
}

/*
 * overage.tags_include_overage(tags text) RETURNS boolean
 *		IMMUTABLE STRICT PARALLEL SAFE
 */
Datum
tags_include_overage(PG_FUNCTION_ARGS)
{
	text	   *tags = PG_GETARG_TEXT_PP(0);

	PG_RETURN_BOOL(overage_tags_contain_overage(VARDATA_ANY(tags),
												VARSIZE_ANY_EXHDR(tags)));
}
