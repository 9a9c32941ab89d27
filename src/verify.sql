/*-------------------------------------------------------------------------
 *
 * src/verify.sql
 *	  overage.verify(): the DBA's consistency check of everything the triggers
 * maintain.  It reads, reports one row per check, and never repairs.
 *
 * Run it after a restore (pg_dump's reload of the tables is taken as it is,
 * see src/restore.c), after anything a superuser did with the triggers off
 * (session_replication_role = replica, ALTER TABLE ... DISABLE TRIGGER), or
 * whenever the books are in doubt.  Each check is one set-based query; the
 * detail of a failed check gives the count and the first five offending
 * keys (in key order), the detail of a passed one what was checked.
 *
 *-------------------------------------------------------------------------
 */

-- DEFINITIONS: re-runnable, replayed by every upgrade script (see Makefile)

CREATE OR REPLACE FUNCTION @extschema@._verify_result(check_name text,
													  checked bigint,
													  noun text,
													  bad text[])
RETURNS TABLE(check_name text, ok boolean, detail text)
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT $1,
		   coalesce(pg_catalog.cardinality($4), 0) OPERATOR(pg_catalog.=) 0,
		   CASE WHEN coalesce(pg_catalog.cardinality($4), 0) OPERATOR(pg_catalog.=) 0
				THEN pg_catalog.format('%s %s checked', $2, $3)
				ELSE pg_catalog.format('%s wrong, %s %s checked: %s%s',
									   pg_catalog.cardinality($4), $2, $3,
									   pg_catalog.array_to_string($4[1:5], '; '),
									   CASE WHEN pg_catalog.cardinality($4) OPERATOR(pg_catalog.>) 5
											THEN '; ...' ELSE '' END)
		   END
$$;

COMMENT ON FUNCTION @extschema@._verify_result(text, bigint, text, text[]) IS
'Internal: one row of overage.verify() from a check''s name, the number of objects checked and the offending keys';

CREATE OR REPLACE FUNCTION @extschema@._verify_at(t timestamptz)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
SELECT pg_catalog.to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || 'Z'
$$;

COMMENT ON FUNCTION @extschema@._verify_at(timestamptz) IS
'Internal: an instant in UTC for overage.verify()''s details, whatever the session''s time zone';

CREATE OR REPLACE FUNCTION @extschema@.verify()
RETURNS TABLE(check_name text, ok boolean, detail text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	n		bigint;
	n2		bigint;
	bad		text[];
	bad2	text[];
	citus	CONSTANT name := 'pg_catalog'::name;
BEGIN
	PERFORM @extschema@._authorize('operate', NULL);

	/*
	 * holder_open_period: every holder row equals the open period of its
	 * history (same partner and subscription, beginning at since), and
	 * there is exactly one open period per (customer, service).
	 */
	SELECT count(*) INTO n FROM @extschema@.holder;
	SELECT array_agg(k ORDER BY k) INTO bad FROM (
		SELECT DISTINCT coalesce(h.customer_id, o.customer_id) || '/' ||
			   coalesce(h.service_id, o.service_id) ||
			   CASE WHEN o.customer_id IS NULL THEN ' (no open period)'
					WHEN h.customer_id IS NULL THEN ' (open period without holder)'
					WHEN o.n > 1 THEN ' (' || o.n || ' open periods)'
					ELSE ' (holder ' || coalesce(h.partner_id, 'None') || ' since ' ||
						 @extschema@._verify_at(h.since) || ', open period ' ||
						 coalesce(o.partner_id, 'None') || ' from ' ||
						 @extschema@._verify_at(o.valid_from) || ')'
			   END AS k
		  FROM @extschema@.holder h
		  FULL JOIN (SELECT p.*, count(*) OVER (PARTITION BY p.customer_id, p.service_id) AS n
					   FROM @extschema@.holder_period p
					  WHERE p.valid_to IS NULL) o
			ON o.customer_id = h.customer_id AND o.service_id = h.service_id
		 WHERE h.customer_id IS NULL OR o.customer_id IS NULL OR o.n > 1
			OR o.valid_from <> h.since
			OR o.partner_id IS DISTINCT FROM h.partner_id
			OR o.subscription_id IS DISTINCT FROM h.subscription_id
			OR o.reseller_id IS DISTINCT FROM h.reseller_id) x;
	RETURN QUERY SELECT * FROM @extschema@._verify_result('holder_open_period', n, 'holders', bad);

	/*
	 * holder_period_overlap: in the history of a (customer, service) each
	 * period ends at or before the next one begins, and only the last one
	 * is open.
	 * holder_period_gap: each closed period ends exactly where the next
	 * begins, unless the audit log has a change of that (customer,
	 * service) at the instant it ends.
	 */
	SELECT count(*),
		   array_agg(k ORDER BY k) FILTER (WHERE overlap),
		   array_agg(k ORDER BY k) FILTER (WHERE gap)
	  INTO n, bad, bad2
	  FROM (SELECT p.customer_id || '/' || p.service_id || ' from ' ||
				   @extschema@._verify_at(p.valid_from) AS k,
				   p.next_from IS NOT NULL
				   AND (p.valid_to IS NULL OR p.valid_to > p.next_from) AS overlap,
				   p.valid_to IS NOT NULL
				   AND (p.next_from IS NULL OR p.valid_to < p.next_from)
				   AND NOT EXISTS (SELECT 1 FROM @extschema@.assignment_log l
									WHERE l.customer_id = p.customer_id
									  AND l.service_id = p.service_id
									  AND l.at = p.valid_to) AS gap
			  FROM (SELECT q.*, lead(q.valid_from) OVER (PARTITION BY q.customer_id, q.service_id
														  ORDER BY q.valid_from) AS next_from
					  FROM @extschema@.holder_period q) p) x;
	RETURN QUERY SELECT * FROM @extschema@._verify_result('holder_period_overlap', n, 'periods', bad);
	RETURN QUERY SELECT * FROM @extschema@._verify_result('holder_period_gap', n, 'periods', bad2);

	/*
	 * assignment_log: the audit log explains the history.  Per (customer,
	 * service), in log_id order, each row's "from" is the previous row's
	 * "to" (None before the first) and its instant is not earlier; every
	 * period begins at a logged change whose last row at that instant
	 * names the period's holder; every logged instant begins a period.
	 */
	SELECT count(*) INTO n FROM @extschema@.assignment_log;
	SELECT array_agg(k ORDER BY k) INTO bad FROM (
		SELECT 'log_id ' || l.log_id || ' ' || l.customer_id || '/' || l.service_id ||
			   CASE WHEN l.at < l.prev_at THEN ' (earlier than the change before it)'
					ELSE ' (from ' || coalesce(l.from_partner_id, 'None') ||
						 ', the change before it was to ' || coalesce(l.prev_partner, 'None') || ')'
			   END AS k
		  FROM (SELECT a.*,
					   lag(a.to_partner_id) OVER w AS prev_partner,
					   lag(a.to_subscription_id) OVER w AS prev_subscription,
					   lag(a.at) OVER w AS prev_at
				  FROM @extschema@.assignment_log a
				WINDOW w AS (PARTITION BY a.customer_id, a.service_id ORDER BY a.log_id)) l
		 WHERE l.from_partner_id IS DISTINCT FROM l.prev_partner
			OR l.from_subscription_id IS DISTINCT FROM l.prev_subscription
			OR l.at < l.prev_at
		UNION ALL
		SELECT p.customer_id || '/' || p.service_id || ' period from ' ||
			   @extschema@._verify_at(p.valid_from) ||
			   CASE WHEN l.log_id IS NULL THEN ' (no change logged at its start)'
					ELSE ' (holder ' || coalesce(p.partner_id, 'None') ||
						 ', logged ' || coalesce(l.to_partner_id, 'None') || ')'
			   END
		  FROM @extschema@.holder_period p
		  LEFT JOIN LATERAL (SELECT a.log_id, a.to_partner_id, a.to_subscription_id
							   FROM @extschema@.assignment_log a
							  WHERE a.customer_id = p.customer_id
								AND a.service_id = p.service_id
								AND a.at = p.valid_from
							  ORDER BY a.log_id DESC LIMIT 1) l ON true
		 WHERE l.log_id IS NULL
			OR l.to_partner_id IS DISTINCT FROM p.partner_id
			OR l.to_subscription_id IS DISTINCT FROM p.subscription_id
		UNION ALL
		SELECT DISTINCT 'log at ' || @extschema@._verify_at(a.at) || ' ' ||
			   a.customer_id || '/' || a.service_id || ' (begins no period)'
		  FROM @extschema@.assignment_log a
		 WHERE NOT EXISTS (SELECT 1 FROM @extschema@.holder_period p
							WHERE p.customer_id = a.customer_id
							  AND p.service_id = a.service_id
							  AND p.valid_from = a.at)) x;
	RETURN QUERY SELECT * FROM @extschema@._verify_result('assignment_log', n, 'audit rows', bad);

	/*
	 * holder_eligible: at the start of each period with a holder, the
	 * partner had an active licence for the customer whose SKU is tagged
	 * IncludeOverage and includes the service, and the subscription was an
	 * active Azure or overage subscription of that partner and customer.
	 * Judged against today's price list (SKU tags and services are not
	 * historised): a SKU whose tags or services changed since shows here.
	 */
	SELECT count(*) INTO n FROM @extschema@.holder_period p WHERE p.partner_id IS NOT NULL;
	SELECT array_agg(k ORDER BY k) INTO bad FROM (
		SELECT p.customer_id || '/' || p.service_id || ' ' || p.partner_id || ' from ' ||
			   @extschema@._verify_at(p.valid_from) ||
			   CASE WHEN NOT e.eligible THEN ' (no overage-enabled licence)'
					ELSE ' (not an active Azure or overage subscription of the partner)'
			   END AS k
		  FROM @extschema@.holder_period p
		  -- by customer too (Citus: one shard); another customer's
		  -- subscription is then no subscription at all, the same finding
		  LEFT JOIN @extschema@.subscription t
			ON t.customer_id = p.customer_id AND t.subscription_id = p.subscription_id
		 -- a count, not EXISTS: Citus plans no sub-SELECT without FROM here
		 CROSS JOIN LATERAL (SELECT count(*) > 0 AS eligible
				  FROM @extschema@.subscription l
				  JOIN @extschema@.sku k
					ON k.product_id = l.product_id AND k.sku_id = l.sku_id
				  JOIN @extschema@.sku_service ss
					ON ss.product_id = l.product_id AND ss.sku_id = l.sku_id
				 WHERE l.customer_id = p.customer_id AND l.partner_id = p.partner_id
				   AND l.kind = 'license' AND k.includes_overage
				   AND ss.service_id = p.service_id
				   AND l.created_at <= p.valid_from
				   AND (l.ended_at IS NULL OR l.ended_at > p.valid_from)) e
		 WHERE p.partner_id IS NOT NULL
		   AND (NOT e.eligible
				OR t.subscription_id IS NULL
				OR t.partner_id <> p.partner_id
				OR t.customer_id <> p.customer_id
				OR t.kind NOT IN ('azure_subscription', 'overage')
				OR t.created_at > p.valid_from
				OR t.ended_at <= p.valid_from)) x;
	RETURN QUERY SELECT * FROM @extschema@._verify_result('holder_eligible', n, 'held periods', bad);

	/*
	 * license_quantity: the quantity history of each licence runs without
	 * gap or overlap from its creation; an active licence has one open
	 * period with its current quantity; a cancelled one has none and its
	 * last period ends at its end (a licence cancelled at its creation
	 * instant has no period at all); other subscriptions have none.
	 */
	SELECT count(*) INTO n FROM @extschema@.subscription s WHERE s.kind = 'license';
	SELECT array_agg(k ORDER BY k) INTO bad FROM (
		SELECT coalesce(s.subscription_id, a.subscription_id)::text || ' ' ||
			   CASE WHEN s.kind IS DISTINCT FROM 'license' THEN '(quantity history of a ' || coalesce(s.kind, 'missing') || ' subscription)'
					WHEN a.subscription_id IS NULL THEN '(no quantity history)'
					WHEN a.first_from <> s.created_at THEN '(history begins at ' || @extschema@._verify_at(a.first_from) || ', not at its creation)'
					WHEN a.breaks > 0 THEN '(gap or overlap in its history)'
					WHEN s.status = 'active' AND a.open_n <> 1 THEN '(' || a.open_n || ' open periods)'
					WHEN s.status = 'active' THEN '(quantity ' || s.quantity || ', history says ' || a.open_qty || ')'
					WHEN a.open_n > 0 THEN '(cancelled, history still open)'
					ELSE '(ended at ' || @extschema@._verify_at(s.ended_at) || ', history ends at ' || @extschema@._verify_at(a.last_to) || ')'
			   END AS k
		  FROM @extschema@.subscription s
		  FULL JOIN (SELECT q.subscription_id,
							min(q.valid_from) AS first_from,
							count(*) FILTER (WHERE q.valid_to IS NULL) AS open_n,
							count(*) FILTER (WHERE q.next_from IS NOT NULL
											   AND q.valid_to IS DISTINCT FROM q.next_from) AS breaks,
							max(q.quantity) FILTER (WHERE q.valid_to IS NULL) AS open_qty,
							max(q.valid_to) FILTER (WHERE q.next_from IS NULL) AS last_to
					   FROM (SELECT lq.*, lead(lq.valid_from) OVER (PARTITION BY lq.subscription_id
																	 ORDER BY lq.valid_from) AS next_from
							   FROM @extschema@.license_quantity lq) q
					  GROUP BY q.subscription_id) a
			ON a.subscription_id = s.subscription_id
		 WHERE (a.subscription_id IS NOT NULL AND s.kind IS DISTINCT FROM 'license')
			OR (s.kind = 'license'
				AND (CASE WHEN a.subscription_id IS NULL
						  THEN s.ended_at IS NULL OR s.ended_at > s.created_at
						  ELSE a.first_from <> s.created_at
							   OR a.breaks > 0
							   OR (s.status = 'active'
								   AND (a.open_n <> 1 OR a.open_qty IS DISTINCT FROM s.quantity))
							   OR (s.status = 'cancelled'
								   AND (a.open_n > 0 OR a.last_to IS DISTINCT FROM s.ended_at))
					 END))) x;
	RETURN QUERY SELECT * FROM @extschema@._verify_result('license_quantity', n, 'licences', bad);

	/*
	 * usage_month: the figures of each (customer, service, month), with
	 * those of its calls not rated yet (usage_pending, 1.2), are the count
	 * and the seconds of its calls, and first_at and last_at bound their
	 * starts (a group whose calls were all deleted keeps a row with zeros).
	 *
	 * usage_parties (1.2): every call's customer and service exist.  A
	 * load refuses unknown ones, and a customer or service with calls
	 * cannot be deleted (_party_delete_guard); a database of 1.1, which
	 * let a customer go once its calls were committed, a superuser with
	 * the triggers off, or a Citus cluster (where the guard does not
	 * run) can still leave calls whose party is gone: their lines would
	 * name a customer the reconciliation file cannot.
	 *
	 * Both read the calls' groups, so one statement reads the calls once
	 * (u) for both.
	 */
	WITH u AS MATERIALIZED (
		SELECT c.customer_id, c.service_id,
			   date_trunc('month', c.started_at AT TIME ZONE 'UTC')::date AS month,
			   count(*) AS calls, sum(c.duration_s) AS seconds,
			   min(c.started_at) AS first_at, max(c.started_at) AS last_at
		  FROM @extschema@.usage c
		 GROUP BY 1, 2, 3),
	figures AS (
		SELECT count(*) AS n, array_agg(k ORDER BY k) FILTER (WHERE NOT agree) AS bad
		  FROM (SELECT coalesce(u.customer_id, m.customer_id) || '/' ||
					   coalesce(u.service_id, m.service_id) || ' ' ||
					   pg_catalog.to_char(coalesce(u.month, m.month), 'YYYY-MM') ||
					   ' (' || coalesce(u.calls, 0) || ' calls, ' || coalesce(u.seconds, 0) ||
					   ' s; figures say ' || coalesce(m.calls, 0) || ' calls, ' ||
					   coalesce(m.seconds, 0) || ' s' ||
					   CASE WHEN u.first_at < m.first_at OR u.last_at > m.last_at
							THEN ', calls outside first_at..last_at' ELSE '' END || ')' AS k,
					   coalesce(u.calls, 0) = coalesce(m.calls, 0)
					   AND coalesce(u.seconds, 0) = coalesce(m.seconds, 0)
					   AND (u.calls IS NULL OR m.calls IS NOT NULL)
					   AND NOT coalesce(u.first_at < m.first_at, false)
					   AND NOT coalesce(u.last_at > m.last_at, false) AS agree
				  FROM u
				  FULL JOIN (SELECT f.month, f.customer_id, f.service_id,
									sum(f.calls) AS calls, sum(f.seconds) AS seconds,
									min(f.first_at) AS first_at, max(f.last_at) AS last_at
							   FROM (SELECT um.month, um.customer_id, um.service_id, um.calls,
											um.seconds, um.first_at, um.last_at
									   FROM @extschema@.usage_month um
									 UNION ALL
									 SELECT p.month, x.c, x.s, x.n, x.secs, x.f, x.l
									   FROM @extschema@.usage_pending p,
											unnest(p.customer_id, p.service_id, p.calls,
												   p.seconds, p.first_at, p.last_at)
											  AS x(c, s, n, secs, f, l)) f
							  GROUP BY 1, 2, 3) m
					ON m.customer_id = u.customer_id AND m.service_id = u.service_id
				   AND m.month = u.month) x),
	parties AS (
		SELECT count(*) AS n, array_agg(k ORDER BY k) FILTER (WHERE NOT agree) AS bad
		  FROM (SELECT g.customer_id || '/' || g.service_id || ' (' || g.calls
					   || CASE WHEN g.calls = 1 THEN ' call' ELSE ' calls' END
					   || CASE WHEN c.customer_id IS NULL THEN ', no such customer' ELSE '' END
					   || CASE WHEN v.service_id IS NULL THEN ', no such service' ELSE '' END
					   || ')' AS k,
					   c.customer_id IS NOT NULL AND v.service_id IS NOT NULL AS agree
				  FROM (SELECT u.customer_id, u.service_id, sum(u.calls) AS calls
						  FROM u GROUP BY 1, 2) g
				  LEFT JOIN @extschema@.customer c ON c.customer_id = g.customer_id
				  LEFT JOIN @extschema@.service v ON v.service_id = g.service_id) x)
	SELECT figures.n, figures.bad, parties.n, parties.bad
	  INTO n, bad, n2, bad2
	  FROM figures, parties;
	RETURN QUERY SELECT * FROM @extschema@._verify_result('usage_month', n, 'groups', bad);
	RETURN QUERY SELECT * FROM @extschema@._verify_result('usage_parties', n2, 'groups', bad2);

	/*
	 * rated_state: the stored rated state (rated_group, rated_line, what
	 * rate_pending and the worker write, what the close and pool_status
	 * read) gives what rating from scratch gives: in every month that is
	 * not closed and has rated groups, _rate_month (the states, the calls
	 * pending after them, the groups a late call or a dated change made
	 * stale) and _rate_month_fresh (every call from the start of the
	 * month) agree line for line.  The one check that re-rates: a pass
	 * over each such month's calls.
	 */
	SELECT count(*) INTO n
	  FROM @extschema@.usage_month f
	  LEFT JOIN @extschema@.billing_month b ON b.month = f.month
	 WHERE b.closed_at IS NULL;
	WITH m AS (
		SELECT DISTINCT r.month
		  FROM @extschema@.rated_group r
		  LEFT JOIN @extschema@.billing_month b ON b.month = r.month
		 WHERE b.closed_at IS NULL
	), g AS (
		-- per side and group: its overage and its lines, each as text, sorted
		SELECT x.side, x.month, x.customer_id, x.service_id,
			   sum(x.overage_seconds) AS secs,
			   array_agg(x.line ORDER BY x.line) AS lines
		  FROM (SELECT y.*, (y.partner_id, y.subscription_id, y.overage_seconds,
							 y.unit_price, y.currency, y.reseller_id)::text AS line
				  FROM (SELECT 'state' AS side, m.month, s.*
						  FROM m, LATERAL @extschema@._rate_month(m.month) s
						UNION ALL
						SELECT 'fresh', m.month, f.*
						  FROM m, LATERAL @extschema@._rate_month_fresh(m.month) f) y) x
		 GROUP BY 1, 2, 3, 4
	)
	SELECT array_agg(k ORDER BY k) INTO bad FROM (
		SELECT pg_catalog.to_char(coalesce(a.month, b.month), 'YYYY-MM') || ' ' ||
			   coalesce(a.customer_id, b.customer_id) || '/' ||
			   coalesce(a.service_id, b.service_id) || ' (' ||
			   coalesce(a.secs, 0) || ' s of overage from the rated state, ' ||
			   coalesce(b.secs, 0) || ' s rated afresh)' AS k
		  FROM (SELECT * FROM g WHERE g.side = 'state') a
		  FULL JOIN (SELECT * FROM g WHERE g.side = 'fresh') b
			ON b.month = a.month AND b.customer_id = a.customer_id
		   AND b.service_id = a.service_id
		 WHERE a.lines IS DISTINCT FROM b.lines) x;
	/*
	 * and every group with figures in an open month has a rated state,
	 * unless the month has calls pending or a dated change waits (either
	 * makes the next rating look at every group of the month): a close
	 * after a rating takes the month's lines from the rated states without
	 * looking for groups that have none (month_dirty, src/live.c).  Not on
	 * a Citus cluster: no live rating there, every close rates its month
	 * from the calls (and usage_pending and rating_stale stay local).
	 */
	IF NOT @extschema@._distributed() THEN
		SELECT bad || array_agg(k ORDER BY k) INTO bad FROM (
			SELECT pg_catalog.to_char(f.month, 'YYYY-MM') || ' ' || f.customer_id || '/' ||
				   f.service_id || ' (' || f.calls || ' calls in usage_month, no rated state,'
				   || ' no pending calls, no dated change)' AS k
			  FROM @extschema@.usage_month f
			  LEFT JOIN @extschema@.billing_month b ON b.month = f.month
			 WHERE b.closed_at IS NULL
			   AND NOT EXISTS (SELECT 1 FROM @extschema@.rated_group r
								WHERE r.month = f.month AND r.customer_id = f.customer_id
								  AND r.service_id = f.service_id)
			   AND NOT EXISTS (SELECT 1 FROM @extschema@.usage_pending p WHERE p.month = f.month)
			   AND NOT EXISTS (SELECT 1 FROM @extschema@.rating_stale)) x;
	END IF;
	RETURN QUERY SELECT * FROM @extschema@._verify_result('rated_state', n, 'groups of open months', bad);

	/*
	 * charge_lines: the charge lines are what close_month wrote: lines
	 * only in closed months, as many as billing_month.lines says, one per
	 * (subscription, customer, service, unit price), quantity and amount
	 * computed from the seconds and the price, the price being the
	 * service's own or one of service_price for the customer's market
	 * during the month (judged against today's prices), and each assigned line's
	 * subscription held the overage of its (customer, service) during
	 * the month.  (It does not re-rate the month: preview_month does.)
	 */
	SELECT count(*) INTO n FROM @extschema@.charge;
	SELECT array_agg(k ORDER BY k) INTO bad FROM (
		SELECT pg_catalog.to_char(coalesce(b.month, c.month), 'YYYY-MM') ||
			   CASE WHEN b.closed_at IS NULL THEN ' (' || c.lines || ' lines in a month that is not closed)'
					ELSE ' (' || coalesce(c.lines, 0) || ' lines, closed with ' || b.lines || ')'
			   END AS k
		  FROM (SELECT * FROM @extschema@.billing_month WHERE closed_at IS NOT NULL) b
		  FULL JOIN (SELECT ch.month, count(*) AS lines FROM @extschema@.charge ch GROUP BY ch.month) c
			ON c.month = b.month
		 WHERE b.month IS NULL OR coalesce(c.lines, 0) <> b.lines
		UNION ALL
		SELECT pg_catalog.to_char(ch.month, 'YYYY-MM') || ' ' || ch.customer_id || '/' ||
			   ch.service_id || ' ' || coalesce(ch.partner_id, 'unassigned') ||
			   CASE WHEN ch.quantity <> round(ch.overage_seconds / 60.0, 6)
					  OR ch.amount <> round(ch.overage_seconds * ch.unit_price / 60, 2)
					THEN ' (quantity or amount not computed from seconds and price)'
					WHEN NOT pr.listed
					THEN ' (price ' || ch.unit_price || ' ' || ch.currency || ' not the service''s nor its price in the customer''s market in the month)'
					ELSE ' (the subscription did not hold the overage in the month)'
			   END
		  FROM @extschema@.charge ch
		  -- the line's price is the service's own or a service_price of
		  -- the customer's market overlapping the month
		  -- (counts, not EXISTS: Citus plans no sub-SELECT without FROM here)
		  CROSS JOIN LATERAL (SELECT own.n > 0 OR market.n > 0 AS listed
				  FROM (SELECT count(*) AS n FROM @extschema@.service sv
						 WHERE sv.service_id = ch.service_id
						   AND sv.unit_price = ch.unit_price AND sv.currency = ch.currency) own,
					   (SELECT count(*) AS n FROM @extschema@.service_price sp
						  JOIN @extschema@.customer cu ON cu.customer_id = ch.customer_id
						 WHERE sp.service_id = ch.service_id
						   AND sp.market = upper(cu.country)
						   AND sp.unit_price = ch.unit_price AND sp.currency = ch.currency
						   AND sp.effective_from < (ch.month + interval '1 month') AT TIME ZONE 'UTC'
						   AND (sp.effective_to IS NULL
								OR sp.effective_to > ch.month::timestamp AT TIME ZONE 'UTC')) market) pr
		 WHERE ch.quantity <> round(ch.overage_seconds / 60.0, 6)
			OR ch.amount <> round(ch.overage_seconds * ch.unit_price / 60, 2)
			OR NOT pr.listed
			OR (ch.partner_id IS NOT NULL
				AND NOT EXISTS (SELECT 1 FROM @extschema@.holder_period p
								 WHERE p.customer_id = ch.customer_id
								   AND p.service_id = ch.service_id
								   AND p.partner_id = ch.partner_id
								   AND p.subscription_id = ch.subscription_id
								   AND p.reseller_id IS NOT DISTINCT FROM ch.reseller_id
								   AND p.valid_from < (ch.month + interval '1 month') AT TIME ZONE 'UTC'
								   AND (p.valid_to IS NULL
										OR p.valid_to > ch.month::timestamp AT TIME ZONE 'UTC')))
		UNION ALL
		SELECT DISTINCT pg_catalog.to_char(d.month, 'YYYY-MM') || ' ' || d.customer_id || '/' ||
			   d.service_id || ' ' || coalesce(d.partner_id, 'unassigned') || ' (more than one line)'
		  FROM (SELECT ch.*, count(*) OVER (PARTITION BY ch.month, ch.subscription_id,
											ch.reseller_id, ch.customer_id,
											ch.service_id, ch.unit_price,
											ch.currency) AS dup
				  FROM @extschema@.charge ch) d
		 WHERE d.dup > 1) x;
	RETURN QUERY SELECT * FROM @extschema@._verify_result('charge_lines', n, 'charge lines', bad);

	/*
	 * transfers (1.2): a completed transfer is the holder change the audit
	 * log records with reason transfer at its closing instant, from its
	 * old partner to its new partner, subscription and reseller, and every
	 * such audit row is a completed transfer's; a pending one still has its
	 * old partner as holder, unchanged since the request (any other change
	 * supersedes it).
	 */
	SELECT count(*) INTO n FROM @extschema@.transfer;
	SELECT array_agg(k ORDER BY k) INTO bad FROM (
		SELECT x.customer_id || '/' || x.service_id || ' ' || x.from_partner_id || ' to ' ||
			   x.to_partner_id ||
			   CASE x.status
					WHEN 'completed' THEN ' (completed ' || @extschema@._verify_at(x.closed_at) ||
										  ', not in the audit log)'
					ELSE ' (pending since ' || @extschema@._verify_at(x.requested_at) ||
						 ', but the holder changed)' END AS k
		  FROM @extschema@.transfer x
		 WHERE (x.status = 'completed'
				AND NOT EXISTS (SELECT 1 FROM @extschema@.assignment_log l
								 WHERE l.customer_id = x.customer_id
								   AND l.service_id = x.service_id
								   AND l.reason = 'transfer' AND l.at = x.closed_at
								   AND l.from_partner_id = x.from_partner_id
								   AND l.to_partner_id = x.to_partner_id
								   AND l.to_subscription_id = x.to_subscription_id
								   AND l.to_reseller_id IS NOT DISTINCT FROM x.to_reseller_id))
			OR (x.status = 'pending'
				AND NOT EXISTS (SELECT 1 FROM @extschema@.holder h
								 WHERE h.customer_id = x.customer_id
								   AND h.service_id = x.service_id
								   AND h.partner_id = x.from_partner_id
								   AND h.since <= x.requested_at))
		UNION ALL
		SELECT l.customer_id || '/' || l.service_id || ' ' || coalesce(l.from_partner_id, 'None') ||
			   ' to ' || coalesce(l.to_partner_id, 'None') || ' (audit row ' || l.log_id ||
			   ', reason transfer at ' || @extschema@._verify_at(l.at) || ', no completed transfer)'
		  FROM @extschema@.assignment_log l
		 WHERE l.reason = 'transfer'
		   AND NOT EXISTS (SELECT 1 FROM @extschema@.transfer x
							WHERE x.customer_id = l.customer_id AND x.service_id = l.service_id
							  AND x.status = 'completed' AND x.closed_at = l.at
							  AND x.to_partner_id IS NOT DISTINCT FROM l.to_partner_id)) x;
	RETURN QUERY SELECT * FROM @extschema@._verify_result('transfers', n, 'transfers', bad);

	/*
	 * sequences: the identity sequences are ahead of the rows (a restore
	 * sets them after the data), so new audit rows and calls continue
	 * after the existing ones.  On a Citus cluster the audit rows are
	 * written by the holder trigger on the shards, each node drawing from
	 * its own sequence: each shard is checked against its node's.
	 */
	bad2 := NULL;
	IF @extschema@._distributed() THEN
		-- (EXECUTE: run_command_on_shards is Citus', absent on one node)
		EXECUTE pg_catalog.format(
				'SELECT array_agg(''assignment_log.log_id (shard '' || r.shardid || '': '' ||'
				'		 CASE WHEN r.success THEN ''rows above its node''''s sequence'''
				'			  ELSE r.result END || '')'')'
				'  FROM %I.run_command_on_shards(''@extschema@.assignment_log'', $1) r'
				' WHERE NOT r.success OR r.result <> ''t''', citus)
			INTO bad2
			USING 'SELECT coalesce(max(log_id), 0) <= coalesce(pg_catalog.pg_sequence_last_value('
				  '''@extschema@.assignment_log_log_id_seq''::pg_catalog.regclass), 0) FROM %s';
	END IF;
	SELECT array_agg(k ORDER BY k) INTO bad FROM (
		SELECT 'assignment_log.log_id (max ' || m || ', sequence at ' ||
			   coalesce(v::text, 'start') || ')' AS k
		  FROM (SELECT max(a.log_id) AS m,
					   pg_catalog.pg_sequence_last_value('@extschema@.assignment_log_log_id_seq'::regclass) AS v
				  FROM @extschema@.assignment_log a) s
		 WHERE m > coalesce(v, 0) AND NOT @extschema@._distributed()
		UNION ALL
		SELECT unnest(bad2) WHERE @extschema@._distributed()
		UNION ALL
		SELECT 'usage.usage_id (max ' || m || ', sequence at ' ||
			   coalesce(v::text, 'start') || ')'
		  FROM (SELECT max(u.usage_id) AS m,
					   pg_catalog.pg_sequence_last_value('@extschema@.usage_usage_id_seq'::regclass) AS v
				  FROM @extschema@.usage u) s
		 WHERE m > coalesce(v, 0)) x;
	RETURN QUERY SELECT * FROM @extschema@._verify_result('sequences', 2, 'identity sequences', bad);
END
$$;

COMMENT ON FUNCTION @extschema@.verify() IS
'Operator only. The consistency of everything the triggers maintain, one row per check (holder_open_period, holder_period_overlap, holder_period_gap, assignment_log, holder_eligible, license_quantity, usage_month, usage_parties, rated_state, charge_lines, transfers, sequences); detail names the count and the first offending keys. Reports, never repairs. Run it after a restore or after writes with the triggers off';
