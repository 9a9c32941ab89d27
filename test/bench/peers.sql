-- Plain-SQL and PL/pgSQL formulations of the month's charge lines under the
-- 1.2 rule (SPEC "Attributing a call"), without the extension's code: they
-- read only its tables (usage, license_quantity, subscription, sku_service,
-- holder_period, service).  Every one returns the 10 columns of a 1.1
-- overage.charge line (bench.line): one per (holder subscription, customer, service,
-- unit price) plus unassigned lines, where overage seconds > 0.
--
--   bench.ref_month     obviously correct and slow: a PL/pgSQL loop over the
--                       month's calls in (started_at, usage_id) order, the
--                       pool and the holder of each call looked up by their
--                       SPEC definitions (correlated subqueries per call).
--   bench.loop_month    a PL/pgSQL loop over the calls in index order, pool
--                       and holder joined from the segments below.
--   bench.win_month     per call, window closed form where it holds, the
--                       loop for the other groups.
--   bench.seg_month     THE PEER (bench.sql_month): per segment sums, window
--                       closed form where it holds, recursive CTE elsewhere;
--                       seg_month(m, 'recursive'): the recursive CTE for
--                       every group.
--
-- Segments.  Within a (customer, service) group the pool and the holder are
-- step functions of time that change only at a handful of instants (licence
-- purchases, quantity changes, cancellations, holder changes).  Cut the
-- month at those instants: inside one segment every call sees the same pool
-- P and the same holder, and the included total after the segment's calls
-- (D seconds in all) is, whatever their order,
--     I' = clamp(P, I, I + D)          (= I + clamp(P - I, 0, D))
-- because each call adds clamp(P - I, 0, d) until I reaches P.  So the
-- month is a fold over the group's segments that have calls, and the calls
-- matter only through one sum per segment: a hash aggregate of the month's
-- calls joined to their segment, no sort of the calls.
--
-- Closed form.  With C_k the running sum of D and E_k the running overage,
-- while I_{k-1} <= P_k the step is I_k = min(I_{k-1} + D_k, P_k), hence
--     E_k = max(0, max_{j<=k} (C_j - P_j)),   I_k = C_k - E_k
-- (a running max).  It is exact for a group iff the closed-form I_{k-1} <=
-- P_k at every k (always true when the pool does not decrease); groups
-- where it fails -- the pool fell below what was already included -- take
-- the step-by-step path.
--
-- Every formulation runs with jit = off: the planner cannot know how few
-- (group, segment) sums the month's calls fold into (it expects about one
-- per call), so it JIT-compiles the per-segment aggregate, which cost about
-- 1 s more per million calls when measured (2.9 s instead of 1.8 s).

CREATE TYPE bench.line AS (month date, partner_id text, customer_id text, service_id text,
	subscription_id uuid, overage_seconds bigint, quantity numeric, unit_price numeric,
	amount numeric, currency text);

-- The month's segments of every (customer, service) that has a licence
-- period or a holder period overlapping the month: [f, t), the pool in
-- seconds during it, the holder (NULL partner/subscription = None).  One
-- segment per instant at which the pool or the holder may change (licence
-- and holder periods' starts and ends), from the first such instant
-- in the month; before it (and in groups without any) the pool is 0 and
-- there is no holder.  Pool = running sum of the licence deltas; holder =
-- the holder period containing f (zero-length periods contain nothing).
CREATE FUNCTION bench.segments(m date)
RETURNS TABLE(customer_id text, service_id text, f timestamptz, t timestamptz,
			  pool bigint, partner_id text, subscription_id uuid)
LANGUAGE sql STABLE AS $$
WITH b AS (
	SELECT date_trunc('month', m)::timestamp AT TIME ZONE 'UTC' AS lo,
		   (date_trunc('month', m) + interval '1 month')::timestamp AT TIME ZONE 'UTC' AS hi
), lic AS (
	SELECT s.customer_id, ss.service_id, greatest(lq.valid_from, b.lo) AS f,
		   CASE WHEN lq.valid_to < b.hi THEN lq.valid_to END AS t,
		   lq.quantity::bigint * ss.minutes_per_license * 60 AS secs
	  FROM overage.license_quantity lq
	  JOIN overage.subscription s ON s.subscription_id = lq.subscription_id
	  JOIN overage.sku_service ss ON ss.product_id = s.product_id AND ss.sku_id = s.sku_id, b
	 WHERE s.kind = 'license' AND ss.minutes_per_license > 0
	   AND lq.valid_from < b.hi AND (lq.valid_to IS NULL OR lq.valid_to > b.lo)
), cut AS (
	SELECT customer_id, service_id, at, sum(delta)::bigint AS delta
	  FROM (SELECT customer_id, service_id, f AS at, secs AS delta FROM lic
			UNION ALL
			SELECT customer_id, service_id, t, -secs FROM lic WHERE t IS NOT NULL
			UNION ALL
			SELECT hp.customer_id, hp.service_id, x.at, 0
			  FROM overage.holder_period hp, b,
				   LATERAL (VALUES (greatest(hp.valid_from, b.lo)), (hp.valid_to)) x(at)
			 WHERE hp.valid_from < b.hi AND (hp.valid_to IS NULL OR hp.valid_to > b.lo)
			   AND x.at < b.hi) e
	 GROUP BY 1, 2, 3
), seg AS (
	SELECT cut.customer_id, cut.service_id, cut.at AS f,
		   lead(cut.at, 1, b.hi) OVER w AS t,
		   sum(cut.delta) OVER w AS pool
	  FROM cut, b
	WINDOW w AS (PARTITION BY cut.customer_id, cut.service_id ORDER BY cut.at
				 ROWS UNBOUNDED PRECEDING)
)
SELECT seg.customer_id, seg.service_id, seg.f, seg.t, seg.pool::bigint, h.partner_id, h.subscription_id
  FROM seg
  LEFT JOIN overage.holder_period h
	ON h.customer_id = seg.customer_id AND h.service_id = seg.service_id
   AND h.valid_from <= seg.f AND (h.valid_to IS NULL OR h.valid_to > seg.f)
$$;

-- The segments of month m in the temporary table seg_s (id, ...), numbered
-- in (customer, service, f) order, and one row per group in gs (gid, its
-- first segment's id, the starts of its segments as a sorted array), both
-- analyzed: with real row counts and distinct keys the planner hashes them,
-- not the month's calls.  width_bucket(started_at, bounds) is then the
-- call's segment within its group (0: before the group's first change).
CREATE FUNCTION bench.load_segments(m date) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	DROP TABLE IF EXISTS pg_temp.seg_s, pg_temp.gs;
	CREATE TEMP TABLE seg_s AS
		SELECT row_number() OVER (ORDER BY s.customer_id, s.service_id, s.f)::int AS id, s.*
		  FROM bench.segments(m) s;
	CREATE TEMP TABLE gs AS
		SELECT row_number() OVER ()::int AS gid, customer_id, service_id, min(id) AS id0,
			   array_agg(f ORDER BY f) AS bounds
		  FROM seg_s GROUP BY customer_id, service_id;
	ANALYZE seg_s;
	ANALYZE gs;
END
$$;

-- Temporary tables of (customer, service, partner, subscription, overage
-- seconds) rows for the loops.
CREATE FUNCTION bench.over_table(name text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE format('DROP TABLE IF EXISTS pg_temp.%I', name);
	EXECUTE format('CREATE TEMP TABLE %I (customer_id text, service_id text, partner_id text,'
				   ' subscription_id uuid, over bigint)', name);
END
$$;

------------------------------------------------------------------------------
-- R: the reference.  Per call, in (started_at, usage_id) order, straight
-- from SPEC, with no segments:
--   pool(t)   = 60 * sum of quantity * minutes over the customer's licences
--               active at t whose SKU includes the service
--   holder(t) = the holder period containing t
--   included  = clamp(pool - included_before, 0, d)
------------------------------------------------------------------------------
CREATE FUNCTION bench.ref_month(m date) RETURNS SETOF bench.line
LANGUAGE plpgsql SET jit = off AS $$
DECLARE
	lo timestamptz := date_trunc('month', m)::timestamp AT TIME ZONE 'UTC';
	hi timestamptz := (date_trunc('month', m) + interval '1 month')::timestamp AT TIME ZONE 'UTC';
	r record;
	gc text;
	gs text;
	ib bigint := 0;
	inc bigint;
BEGIN
	PERFORM bench.over_table('ref_over');
	FOR r IN
		SELECT u.customer_id, u.service_id, u.started_at, u.duration_s,
			   (SELECT coalesce(sum(lq.quantity::bigint * ss.minutes_per_license * 60), 0)
				  FROM overage.subscription s
				  JOIN overage.license_quantity lq ON lq.subscription_id = s.subscription_id
				  JOIN overage.sku_service ss ON ss.product_id = s.product_id AND ss.sku_id = s.sku_id
				 WHERE s.kind = 'license' AND s.customer_id = u.customer_id
				   AND ss.service_id = u.service_id
				   AND lq.valid_from <= u.started_at
				   AND (lq.valid_to IS NULL OR lq.valid_to > u.started_at)) AS pool,
			   h.partner_id, h.subscription_id
		  FROM overage.usage u
		  LEFT JOIN overage.holder_period h
			ON h.customer_id = u.customer_id AND h.service_id = u.service_id
		   AND h.valid_from <= u.started_at AND (h.valid_to IS NULL OR h.valid_to > u.started_at)
		 WHERE u.started_at >= lo AND u.started_at < hi
		 ORDER BY u.customer_id, u.service_id, u.started_at, u.usage_id
	LOOP
		IF gc IS DISTINCT FROM r.customer_id OR gs IS DISTINCT FROM r.service_id THEN
			gc := r.customer_id; gs := r.service_id; ib := 0;
		END IF;
		inc := least(greatest(r.pool - ib, 0), r.duration_s);
		ib := ib + inc;
		IF r.duration_s > inc THEN
			INSERT INTO ref_over VALUES (r.customer_id, r.service_id, r.partner_id,
										 r.subscription_id, r.duration_s - inc);
		END IF;
	END LOOP;
	RETURN QUERY SELECT * FROM bench.lines(m, 'ref_over');
END
$$;

-- The lines of a month from a table of overage rows.
CREATE FUNCTION bench.lines(m date, tab text) RETURNS SETOF bench.line
LANGUAGE plpgsql AS $$
BEGIN
	RETURN QUERY EXECUTE format(
		'SELECT date_trunc(''month'', $1)::date, x.partner_id, x.customer_id, x.service_id,'
		' x.subscription_id, x.over, round(x.over / 60.0, 6), sv.unit_price,'
		' round(x.over * sv.unit_price / 60, 2), sv.currency'
		' FROM (SELECT customer_id, service_id, partner_id, subscription_id, sum(over)::bigint AS over'
		'		FROM %I GROUP BY 1, 2, 3, 4 HAVING sum(over) > 0) x'
		' JOIN overage.service sv ON sv.service_id = x.service_id', tab) USING m;
END
$$;

------------------------------------------------------------------------------
-- L: a PL/pgSQL loop over the calls in rating order, pool and holder of
-- each call joined from the segments.
------------------------------------------------------------------------------
CREATE FUNCTION bench.loop_month(m date) RETURNS SETOF bench.line
LANGUAGE plpgsql SET jit = off AS $$
DECLARE
	lo timestamptz := date_trunc('month', m)::timestamp AT TIME ZONE 'UTC';
	hi timestamptz := (date_trunc('month', m) + interval '1 month')::timestamp AT TIME ZONE 'UTC';
	r record;
	gc text;
	gs text;
	ib bigint := 0;
	inc bigint;
BEGIN
	PERFORM bench.load_segments(m);
	PERFORM bench.over_table('loop_over');
	FOR r IN
		SELECT u.customer_id, u.service_id, u.duration_s, coalesce(s.pool, 0) AS pool,
			   s.partner_id, s.subscription_id
		  FROM overage.usage u
		  LEFT JOIN seg_s s
			ON s.customer_id = u.customer_id AND s.service_id = u.service_id
		   AND u.started_at >= s.f AND u.started_at < s.t
		 WHERE u.started_at >= lo AND u.started_at < hi
		 ORDER BY u.customer_id, u.service_id, u.started_at, u.usage_id
	LOOP
		IF gc IS DISTINCT FROM r.customer_id OR gs IS DISTINCT FROM r.service_id THEN
			gc := r.customer_id; gs := r.service_id; ib := 0;
		END IF;
		inc := least(greatest(r.pool - ib, 0), r.duration_s);
		ib := ib + inc;
		IF r.duration_s > inc THEN
			INSERT INTO loop_over VALUES (r.customer_id, r.service_id, r.partner_id,
										  r.subscription_id, r.duration_s - inc);
		END IF;
	END LOOP;
	RETURN QUERY SELECT * FROM bench.lines(m, 'loop_over');
END
$$;

------------------------------------------------------------------------------
-- W: per call.  Pool and holder of each call from the segments; running sum
-- C and running max of C - P over the calls in (started_at, usage_id)
-- order (one sort of the month's calls); groups where the closed form is
-- not exact go through the loop of L.
------------------------------------------------------------------------------
CREATE FUNCTION bench.win_month(m date) RETURNS SETOF bench.line
LANGUAGE plpgsql SET jit = off AS $$
DECLARE
	lo timestamptz := date_trunc('month', m)::timestamp AT TIME ZONE 'UTC';
	hi timestamptz := (date_trunc('month', m) + interval '1 month')::timestamp AT TIME ZONE 'UTC';
	r record;
	gc text;
	gs text;
	ib bigint := 0;
	inc bigint;
BEGIN
	PERFORM bench.load_segments(m);
	PERFORM bench.over_table('win_over');
	DROP TABLE IF EXISTS pg_temp.win_g;
	CREATE TEMP TABLE win_g AS
	WITH k AS (
		SELECT u.customer_id, u.service_id, u.started_at, u.usage_id, u.duration_s AS d,
			   coalesce(s.pool, 0) AS pool, s.partner_id, s.subscription_id,
			   sum(u.duration_s) OVER w AS c
		  FROM overage.usage u
		  LEFT JOIN seg_s s
			ON s.customer_id = u.customer_id AND s.service_id = u.service_id
		   AND u.started_at >= s.f AND u.started_at < s.t
		 WHERE u.started_at >= lo AND u.started_at < hi
		WINDOW w AS (PARTITION BY u.customer_id, u.service_id ORDER BY u.started_at, u.usage_id
					 ROWS UNBOUNDED PRECEDING)
	), e AS (
		SELECT k.*,
			   greatest(max(c - pool) OVER w, 0) AS e,
			   greatest(coalesce(max(c - pool) OVER w1, 0), 0) AS e_prev
		  FROM k
		WINDOW w AS (PARTITION BY customer_id, service_id ORDER BY started_at, usage_id
					 ROWS UNBOUNDED PRECEDING),
			   w1 AS (PARTITION BY customer_id, service_id ORDER BY started_at, usage_id
					  ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
	)
	SELECT customer_id, service_id, partner_id, subscription_id,
		   sum(e - e_prev)::bigint AS over, bool_and(c - d - e_prev <= pool) AS exact
	  FROM e GROUP BY 1, 2, 3, 4;
	-- a group is exact only if all its rows are
	INSERT INTO win_over
		SELECT customer_id, service_id, partner_id, subscription_id, over FROM win_g g
		 WHERE NOT EXISTS (SELECT FROM win_g b WHERE b.customer_id = g.customer_id
						   AND b.service_id = g.service_id AND NOT b.exact);
	FOR r IN
		SELECT u.customer_id, u.service_id, u.duration_s, coalesce(s.pool, 0) AS pool,
			   s.partner_id, s.subscription_id
		  FROM (SELECT DISTINCT customer_id, service_id FROM win_g WHERE NOT exact) b
		  JOIN overage.usage u ON u.customer_id = b.customer_id AND u.service_id = b.service_id
		  LEFT JOIN seg_s s
			ON s.customer_id = u.customer_id AND s.service_id = u.service_id
		   AND u.started_at >= s.f AND u.started_at < s.t
		 WHERE u.started_at >= lo AND u.started_at < hi
		 ORDER BY u.customer_id, u.service_id, u.started_at, u.usage_id
	LOOP
		IF gc IS DISTINCT FROM r.customer_id OR gs IS DISTINCT FROM r.service_id THEN
			gc := r.customer_id; gs := r.service_id; ib := 0;
		END IF;
		inc := least(greatest(r.pool - ib, 0), r.duration_s);
		ib := ib + inc;
		IF r.duration_s > inc THEN
			INSERT INTO win_over VALUES (r.customer_id, r.service_id, r.partner_id,
										 r.subscription_id, r.duration_s - inc);
		END IF;
	END LOOP;
	RETURN QUERY SELECT * FROM bench.lines(m, 'win_over');
END
$$;

------------------------------------------------------------------------------
-- S (the peer): one sum per segment (a hash join of the month's calls to
-- their segment and a hash aggregate: no sort of the calls), then the fold
-- over segments: window closed form for the groups where it is exact, a
-- recursive CTE (one step per segment, all such groups at once) for the
-- others.  fold = 'hybrid' (the peer) or 'recursive' (every group through
-- the recursive CTE, to measure the closed form's worth).
------------------------------------------------------------------------------
CREATE FUNCTION bench.seg_month(m date, fold text DEFAULT 'hybrid') RETURNS SETOF bench.line
LANGUAGE plpgsql SET jit = off AS $$
DECLARE
	lo timestamptz := date_trunc('month', m)::timestamp AT TIME ZONE 'UTC';
	hi timestamptz := (date_trunc('month', m) + interval '1 month')::timestamp AT TIME ZONE 'UTC';
BEGIN
	PERFORM bench.load_segments(m);
	RETURN QUERY
	WITH RECURSIVE d AS (
		-- the calls: one sum per segment, found by one hash probe per call
		-- into the groups and a binary search in the group's bounds; calls
		-- of a group without any change have no gid (pool 0, no holder)
		SELECT g.gid, coalesce(width_bucket(u.started_at, g.bounds), 0) AS b,
			   CASE WHEN g.gid IS NULL THEN u.customer_id END AS c0,
			   CASE WHEN g.gid IS NULL THEN u.service_id END AS s0,
			   sum(u.duration_s)::bigint AS d
		  FROM overage.usage u
		  LEFT JOIN gs g ON g.customer_id = u.customer_id AND g.service_id = u.service_id
		 WHERE u.started_at >= lo AND u.started_at < hi
		 GROUP BY 1, 2, 3, 4
	), k AS (
		SELECT coalesce(g.customer_id, d.c0) AS customer_id, coalesce(g.service_id, d.s0) AS service_id,
			   d.b AS f, d.d, coalesce(s.pool, 0) AS pool, s.partner_id, s.subscription_id
		  FROM d LEFT JOIN gs g ON g.gid = d.gid
		  LEFT JOIN seg_s s ON d.b > 0 AND s.id = g.id0 + d.b - 1
	), e AS (
		SELECT k.*,
			   row_number() OVER w AS rn,
			   greatest(max(c - pool) OVER w, 0) AS e,
			   greatest(coalesce(max(c - pool) OVER w1, 0), 0) AS e_prev
		  FROM (SELECT k.*, sum(k.d) OVER w AS c FROM k
				WINDOW w AS (PARTITION BY customer_id, service_id ORDER BY f
							 ROWS UNBOUNDED PRECEDING)) k
		WINDOW w AS (PARTITION BY customer_id, service_id ORDER BY f
					 ROWS UNBOUNDED PRECEDING),
			   w1 AS (PARTITION BY customer_id, service_id ORDER BY f
					  ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
	), x AS (
		-- the closed form is exact iff I_{k-1} = C_{k-1} - E_{k-1} <= P_k at every k
		SELECT e.*, fold = 'hybrid' AND bool_and(c - d - e_prev <= pool)
					OVER (PARTITION BY customer_id, service_id) AS exact
		  FROM e
	), xr AS MATERIALIZED (
		SELECT * FROM x WHERE NOT exact
	), r AS (
		SELECT customer_id, service_id, rn, least(pool, d) AS i, d - least(pool, d) AS over,
			   partner_id, subscription_id
		  FROM xr WHERE rn = 1
		UNION ALL
		SELECT xr.customer_id, xr.service_id, xr.rn,
			   greatest(r.i, least(xr.pool, r.i + xr.d)),
			   xr.d - (greatest(r.i, least(xr.pool, r.i + xr.d)) - r.i),
			   xr.partner_id, xr.subscription_id
		  FROM r JOIN xr ON xr.customer_id = r.customer_id AND xr.service_id = r.service_id
						AND xr.rn = r.rn + 1
	), o AS (
		SELECT customer_id, service_id, partner_id, subscription_id, sum(over)::bigint AS over
		  FROM (SELECT customer_id, service_id, partner_id, subscription_id, e - e_prev AS over
				  FROM x WHERE exact
				UNION ALL
				SELECT customer_id, service_id, partner_id, subscription_id, over FROM r) y
		 GROUP BY 1, 2, 3, 4
		HAVING sum(over) > 0
	)
	SELECT date_trunc('month', m)::date, o.partner_id, o.customer_id, o.service_id,
		   o.subscription_id, o.over, round(o.over / 60.0, 6), sv.unit_price,
		   round(o.over * sv.unit_price / 60, 2), sv.currency
	  FROM o JOIN overage.service sv ON sv.service_id = o.service_id;
END
$$;

-- The benchmark's peer: the fastest formulation measured (README, RESULTS.md).
CREATE FUNCTION bench.sql_month(m date) RETURNS SETOF bench.line
LANGUAGE sql AS $$ SELECT * FROM bench.seg_month(m) $$;
