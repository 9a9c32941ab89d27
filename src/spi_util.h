/*-------------------------------------------------------------------------
 *
 * spi_util.h
 *	  SPI and result helpers shared by the modules that query the tables
 *	  (spi_util.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef OVERAGE_SPI_UTIL_H
#define OVERAGE_SPI_UTIL_H

#include "fmgr.h"
#include "executor/spi.h"

/* the relations a statement names instead of the extension's tables:
 * "overage.<from[i]>" becomes to[i] (a qualified, quoted name) */
typedef struct OverageRelMap
{
	int			n;
	const char **from;
	const char **to;
} OverageRelMap;

extern void overage_spi_map(const OverageRelMap *map);
extern bool overage_spi_mapped(void);
extern SPIPlanPtr overage_spi_prepare(SPIPlanPtr *cache, const char *sql,
									  int nargs, Oid *argtypes);
extern int	overage_spi_exec(SPIPlanPtr *cache, const char *sql, int nargs,
							 Oid *argtypes, Datum *values, const char *nulls,
							 long count);
extern Datum overage_attr(HeapTuple tuple, TupleDesc desc, const char *name,
						  bool *isnull);
extern char *overage_spi_text(HeapTuple tup, TupleDesc desc, int col);
extern char *overage_text_str(Datum d, bool isnull);
extern char *overage_uuid_str(Datum d, bool isnull);
extern char *overage_time_str(Datum d, bool isnull);
extern void overage_init_materialized_srf(FunctionCallInfo fcinfo);
extern Datum overage_array(Datum *values, bool *nulls, int n, Oid elemtype);
extern void overage_spi_pin(void);
extern void overage_spi_unpin(bool ok);
extern bool overage_spi_pinned(void);
extern bool overage_has_column(const char *table, const char *column);

#endif							/* OVERAGE_SPI_UTIL_H */
