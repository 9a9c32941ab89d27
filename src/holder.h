/*-------------------------------------------------------------------------
 *
 * holder.h
 *	  The eligibility rule of the overage holder (holder.c), also used by
 *	  the automatic release when a licence ends (subscription.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef OVERAGE_HOLDER_H
#define OVERAGE_HOLDER_H


extern bool overage_partner_eligible(Datum partner_id, Datum customer_id,
									 Datum service_id, Datum at);

#endif							/* OVERAGE_HOLDER_H */
