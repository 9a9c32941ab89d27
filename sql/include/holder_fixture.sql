-- sql/include/holder_fixture.sql: shared by the holder tests (purchase,
-- first_in, handoff, auto_release, bad_input, triggers), read with \i.
-- Helpers in schema t and the catalog every one of those stories uses.
CREATE SCHEMA t;
CREATE TABLE t.names (id uuid PRIMARY KEY, name text UNIQUE NOT NULL);
CREATE FUNCTION t.reg(n text, u uuid) RETURNS text LANGUAGE sql
	AS $$ INSERT INTO t.names VALUES (u, n) RETURNING name $$;
CREATE FUNCTION t.nm(u uuid) RETURNS text LANGUAGE sql STABLE AS $$
	SELECT coalesce((SELECT n.name FROM t.names n WHERE n.id = u),
					(SELECT s.partner_id || '/' || s.customer_id || '/' || s.kind
					   FROM overage.subscription s WHERE s.subscription_id = u),
					CASE WHEN u IS NOT NULL THEN 'unknown uuid' END) $$;
CREATE FUNCTION t.id(n text) RETURNS uuid LANGUAGE plpgsql STABLE AS $$
DECLARE u uuid;
BEGIN
	SELECT id INTO u FROM t.names WHERE name = n;
	IF u IS NULL THEN
		SELECT s.subscription_id INTO STRICT u FROM overage.subscription s
		 WHERE s.partner_id || '/' || s.customer_id || '/' || s.kind = n
		   AND s.status = 'active';
	END IF;
	RETURN u;
END $$;
CREATE FUNCTION t.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE st text; msg text; m text[];
BEGIN
	EXECUTE stmt;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
	FOR m IN SELECT regexp_matches(msg, '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', 'g') LOOP
		msg := replace(msg, m[1], t.nm(m[1]::uuid));
	END LOOP;
	RETURN st || ': ' || msg;
END $$;
-- the holder of each service of a customer, as get_overage returns it
CREATE FUNCTION t.holders(c text)
	RETURNS TABLE (service_id text, partner_id text, subscription text, since timestamptz)
	LANGUAGE sql AS $$
	SELECT g.service_id, g.partner_id, t.nm(g.subscription_id), g.since
	  FROM overage.get_overage(c) g ORDER BY 1 $$;
-- the audit log of a customer, in order
CREATE FUNCTION t.log(c text)
	RETURNS TABLE (service_id text, from_partner text, from_sub text,
				   to_partner text, to_sub text, at timestamptz, reason text)
	LANGUAGE sql AS $$
	SELECT l.service_id, l.from_partner_id, t.nm(l.from_subscription_id),
		   l.to_partner_id, t.nm(l.to_subscription_id), l.at, l.reason
	  FROM overage.assignment_log l WHERE l.customer_id = c ORDER BY l.log_id $$;
-- the holder history of a customer
CREATE FUNCTION t.periods(c text)
	RETURNS TABLE (service_id text, partner_id text, subscription text,
				   valid_from timestamptz, valid_to timestamptz)
	LANGUAGE sql AS $$
	SELECT p.service_id, p.partner_id, t.nm(p.subscription_id), p.valid_from, p.valid_to
	  FROM overage.holder_period p WHERE p.customer_id = c ORDER BY 1, 4 $$;
-- a fingerprint of everything the API writes, to show that a refused call
-- changed nothing
CREATE FUNCTION t.state() RETURNS text LANGUAGE sql AS $$
	SELECT md5(concat_ws('|',
		(SELECT string_agg(s::text, ',' ORDER BY s.subscription_id) FROM overage.subscription s),
		(SELECT string_agg(q::text, ',' ORDER BY q.subscription_id, q.valid_from) FROM overage.license_quantity q),
		(SELECT string_agg(h::text, ',' ORDER BY h.customer_id, h.service_id) FROM overage.holder h),
		(SELECT string_agg(p::text, ',' ORDER BY p.customer_id, p.service_id, p.valid_from) FROM overage.holder_period p),
		(SELECT string_agg(l::text, ',' ORDER BY l.log_id) FROM overage.assignment_log l),
		(SELECT string_agg(x::text, ',' ORDER BY x.transfer_id) FROM overage.transfer x))) $$;

-- The catalog: two services; an overage SKU with both (E5), an overage SKU
-- with domestic calling only (DOM), a SKU without the overage tag that
-- includes domestic calling (E3), and one without services (BASIC).
INSERT INTO overage.service (service_id, name, unit_price) VALUES
	('dom', 'Domestic calling', 0.02),
	('intl', 'International calling', 0.10);
INSERT INTO overage.sku (product_id, sku_id, title, tags) VALUES
	('E5', '0001', 'Microsoft 365 E5 with Calling Plan', 'Telco;IncludeOverage'),
	('DOM', '0001', 'Domestic Calling Plan', 'IncludeOverage'),
	('E3', '0001', 'Microsoft 365 E3 with Calling Plan', 'Telco'),
	('BASIC', '0001', 'Microsoft 365 Business Basic', NULL);
INSERT INTO overage.sku_service (product_id, sku_id, service_id, minutes_per_license) VALUES
	('E5', '0001', 'dom', 120), ('E5', '0001', 'intl', 0),
	('DOM', '0001', 'dom', 120),
	('E3', '0001', 'dom', 120);
INSERT INTO overage.partner VALUES ('A', 'Alpha Reseller'), ('B', 'Beta Reseller'), ('C', 'Gamma Reseller');
INSERT INTO overage.customer VALUES ('c1', 'Contoso', 'US'), ('c2', 'Fabrikam', 'DE');
