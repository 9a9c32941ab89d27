/*-------------------------------------------------------------------------
 *
 * overage.h
 *	  The extension's own SQLSTATEs, which every module raises.
 *
 * The SQLSTATE class "OV" is the extension's own (classes beginning with a
 * letter from I to Z are free for implementations).  README.md lists every
 * code with the rule it stands for.  What only some modules share has a
 * header of its own: spi_util.h, month.h, guard.h, holder.h, rating.h.
 *
 *-------------------------------------------------------------------------
 */
#ifndef OVERAGE_H
#define OVERAGE_H

#include "utils/elog.h"

/* the partner has no active licence that enables overage for the service */
#define ERRCODE_OVERAGE_NOT_ELIGIBLE		MAKE_SQLSTATE('O','V','0','0','1')
/* another partner holds the overage; it must be set to None first */
#define ERRCODE_OVERAGE_HELD_BY_OTHER		MAKE_SQLSTATE('O','V','0','0','2')
/* the target subscription cannot receive overage charges */
#define ERRCODE_OVERAGE_INVALID_TARGET		MAKE_SQLSTATE('O','V','0','0','3')
/* release by a partner that does not hold the overage */
#define ERRCODE_OVERAGE_NOT_HOLDER			MAKE_SQLSTATE('O','V','0','0','4')
/* an instant earlier than the object's last change */
#define ERRCODE_OVERAGE_TIME_BACKWARDS		MAKE_SQLSTATE('O','V','0','0','5')
/* the month is closed: no new usage, no changed lines, no second close */
#define ERRCODE_OVERAGE_MONTH_CLOSED		MAKE_SQLSTATE('O','V','0','0','6')
/* the month is still open (reconciliation of an open month) */
#define ERRCODE_OVERAGE_MONTH_OPEN			MAKE_SQLSTATE('O','V','0','0','7')
/* a history or audit table written other than through the extension */
#define ERRCODE_OVERAGE_HISTORY_READONLY	MAKE_SQLSTATE('O','V','0','0','8')
/* a transfer that is not pending, or a second pending transfer (1.2) */
#define ERRCODE_OVERAGE_TRANSFER_STATE		MAKE_SQLSTATE('O','V','0','0','9')
/* nothing to transfer: None, never assigned, or the requester holds it */
#define ERRCODE_OVERAGE_NOTHING_TO_TRANSFER	MAKE_SQLSTATE('O','V','0','1','0')

#endif							/* OVERAGE_H */
