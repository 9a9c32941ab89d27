/*-------------------------------------------------------------------------
 *
 * party_cache.h
 *	  The customers and services a backend has already found
 *	  (party_cache.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef OVERAGE_PARTY_CACHE_H
#define OVERAGE_PARTY_CACHE_H

extern bool party_cache_known(Oid relid, const char *id, int len);
extern void party_cache_add(Oid relid, const char *id, int len);

#endif							/* OVERAGE_PARTY_CACHE_H */
