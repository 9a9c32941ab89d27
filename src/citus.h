/*-------------------------------------------------------------------------
 *
 * citus.h
 *	  Is this database's overage distributed by Citus (overage.distribute())?
 *	  What the C triggers do differently on the nodes of a cluster (citus.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef OVERAGE_CITUS_H
#define OVERAGE_CITUS_H

extern bool overage_is_distributed(void);
extern char *overage_local_placement(const char *relname);

struct OverageRelMap;
extern struct OverageRelMap *overage_shard_relations(Oid shard);

#endif							/* OVERAGE_CITUS_H */
