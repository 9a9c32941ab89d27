/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  The background rating worker and its settings (worker.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef OVERAGE_WORKER_H
#define OVERAGE_WORKER_H

/* defines the overage.* settings; registers the worker when preloaded */
extern void overage_worker_init(void);

/* the worker's entry point, named in its registration (bgw_function_name) */
extern PGDLLEXPORT void overage_rating_worker_main(Datum main_arg);

#endif							/* OVERAGE_WORKER_H */
