#!/usr/bin/env python3
"""
Model-based randomized test of the overage holder rules.

Generates random scenarios (partners, customers, SKUs with and without
overage, one or two services) and drives the public API through psql:
purchase, set_quantity, cancel, create_azure_subscription, assign_overage
(1.2: with an indirect reseller now and then), release_overage, and the
three-party transfer (1.2: request_transfer, consent_transfer as holder or
customer, decline_transfer, withdraw_transfer), with instants that mostly
increase and sometimes go backwards or jump past a transfer's expiry, and
some invalid calls (NULL arguments, unknown objects, bad quantities, wrong
targets, a party that is neither, a partner as its own reseller).

An independent Python model of SPEC's rules predicts, for every call,
success or the SQLSTATE of the failure, and the resulting state.  After each
call the database is compared with the model:

  * get_overage() of every customer (holder and "since" per service);
  * every subscription (partner, customer, kind, SKU, quantity, status,
    created, ended), and the quantity history of the licences;
  * the audit log, row by row (from, to, resellers, instant, reason): one
    row per holder change;
  * the reseller of every holder; every transfer, step by step (consents,
    expiry, status, closed_at): completed at the second consent with no
    None period, superseded by any other holder change, expired at or
    after expires_at, final once closed;
  * holder_period: no overlapping periods, one open period per (customer,
    service), each period beginning at a logged change.

The first disagreement is printed with the scenario's recent history and
the program exits 1.  Deterministic: fixed seeds.  Standard library only;
psql runs as one long-lived subprocess.

Usage: holder_model.py DBNAME [SCENARIOS] [STEPS]
"""
import datetime
import json
import os
import random
import sys

from psql_session import Psql

BASE = datetime.datetime(2026, 10, 1, 0, 0, tzinfo=datetime.timezone.utc)
PARTNERS = ['A', 'B', 'C']
CUSTOMERS = ['c1', 'c2']
SERVICES = ['dom', 'intl']
# product -> (includes overage, services)
SKUS = {
    'OV2': (True, ['dom', 'intl']),
    'OV1': (True, ['dom']),
    'OVI': (True, ['intl']),
    'NO': (False, ['dom']),
}
TARGET_KINDS = ('azure_subscription', 'overage')


class Disagreement(Exception):
    pass


# OVERAGE_AFTER_CREATE: SQL run right after CREATE EXTENSION (the Citus
# test, test/scripts/citus.sh, distributes the tables there)
SETUP = r"""
DROP EXTENSION IF EXISTS overage CASCADE;
CREATE EXTENSION overage;
""" + os.environ.get('OVERAGE_AFTER_CREATE', '') + r"""
INSERT INTO overage.service (service_id, name, unit_price) VALUES
    ('dom', 'Domestic calling', 0.02), ('intl', 'International calling', 0.10);
INSERT INTO overage.sku (product_id, sku_id, title, tags) VALUES
    ('OV2', '1', 'Both services, overage', 'Telco;IncludeOverage'),
    ('OV1', '1', 'Domestic, overage', 'IncludeOverage'),
    ('OVI', '1', 'International, overage', 'includeoverage'),
    ('NO', '1', 'Domestic, no overage', 'Telco');
INSERT INTO overage.sku_service VALUES
    ('OV2', '1', 'dom', 120), ('OV2', '1', 'intl', 0),
    ('OV1', '1', 'dom', 120), ('OVI', '1', 'intl', 30), ('NO', '1', 'dom', 120);
INSERT INTO overage.partner VALUES ('A', 'Alpha'), ('B', 'Beta'), ('C', 'Gamma');
INSERT INTO overage.customer VALUES ('c1', 'Contoso', 'US'), ('c2', 'Fabrikam', 'DE');
"""

HELPERS = r"""
CREATE OR REPLACE FUNCTION pg_temp.model_try(stmt text) RETURNS text LANGUAGE plpgsql AS $f$
DECLARE st text; msg text; r text;
BEGIN
    EXECUTE stmt INTO r;
    RETURN json_build_object('ok', true, 'result', r)::text;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
    RETURN json_build_object('ok', false, 'sqlstate', st, 'message', msg)::text;
END $f$;
CREATE OR REPLACE FUNCTION pg_temp.model_state() RETURNS text LANGUAGE sql AS $f$
SELECT json_build_object(
  'holders', (SELECT coalesce(json_agg(json_build_array(c.customer_id, g.service_id, g.partner_id,
                                g.subscription_id, to_char(g.since AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'))
                                ORDER BY c.customer_id, g.service_id), '[]')
                FROM overage.customer c, overage.get_overage(c.customer_id) g),
  'subs', (SELECT coalesce(json_agg(json_build_array(s.subscription_id, s.partner_id, s.customer_id,
                             s.kind, s.product_id, s.quantity, s.status,
                             to_char(s.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'),
                             to_char(s.ended_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'))
                             ORDER BY s.subscription_id), '[]')
             FROM overage.subscription s),
  'log', (SELECT coalesce(json_agg(json_build_array(l.customer_id, l.service_id, l.from_partner_id,
                            l.from_subscription_id, l.to_partner_id, l.to_subscription_id,
                            to_char(l.at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'), l.reason,
                            l.from_reseller_id, l.to_reseller_id)
                            ORDER BY l.log_id), '[]')
            FROM overage.assignment_log l),
  'resellers', (SELECT coalesce(json_agg(json_build_array(h.customer_id, h.service_id, h.reseller_id)
                                ORDER BY h.customer_id, h.service_id), '[]')
                  FROM overage.holder h),
  'transfers', (SELECT coalesce(json_agg(json_build_array(x.transfer_id, x.customer_id, x.service_id,
                                x.from_partner_id, x.to_partner_id, x.to_subscription_id, x.to_reseller_id,
                                to_char(x.requested_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'),
                                to_char(x.holder_consent_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'),
                                to_char(x.customer_consent_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'),
                                to_char(x.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'),
                                x.status, to_char(x.closed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'))
                                ORDER BY x.transfer_id), '[]')
                  FROM overage.transfer x),
  'quantities', (SELECT coalesce(json_agg(json_build_array(q.subscription_id,
                               to_char(q.valid_from AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'),
                               to_char(q.valid_to AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'), q.quantity)
                               ORDER BY q.subscription_id, q.valid_from), '[]')
                   FROM overage.license_quantity q),
  'overlaps', (SELECT count(*) FROM overage.holder_period a JOIN overage.holder_period b
                 ON a.customer_id = b.customer_id AND a.service_id = b.service_id
                AND a.valid_from < b.valid_from
              WHERE a.valid_to IS NULL OR a.valid_to > b.valid_from),
  'open_periods', (SELECT coalesce(json_agg(json_build_array(customer_id, service_id, n)
                                            ORDER BY customer_id, service_id), '[]')
                     FROM (SELECT customer_id, service_id, count(*) FILTER (WHERE valid_to IS NULL) AS n
                             FROM overage.holder_period GROUP BY 1, 2) x),
  'periods_not_logged', (SELECT count(*) FROM overage.holder_period p
                          WHERE NOT EXISTS (SELECT 1 FROM overage.assignment_log l
                                             WHERE l.customer_id = p.customer_id
                                               AND l.service_id = p.service_id
                                               AND l.at = p.valid_from
                                               AND l.to_partner_id IS NOT DISTINCT FROM p.partner_id
                                               AND l.to_subscription_id IS NOT DISTINCT FROM p.subscription_id
                                               AND l.to_reseller_id IS NOT DISTINCT FROM p.reseller_id))
)::text
$f$;
"""


def ts(minutes):
    return (BASE + datetime.timedelta(minutes=minutes)).strftime('%Y-%m-%d %H:%M')


def lit(v):
    if v is None:
        return 'NULL'
    if isinstance(v, int):
        return str(v)
    return "'%s'" % str(v).replace("'", "''")


class Model:
    """SPEC's rules, independently of the SQL and C code."""

    def __init__(self):
        self.subs = {}      # id -> dict
        self.holders = {}   # (customer, service) -> dict(partner, sub, since, reseller)
        self.log = []       # (customer, service, from_p, from_s, to_p, to_s, at, reason, from_r, to_r)
        self.transfers = {}  # id -> dict (see request)
        self.pending = 0    # counter for placeholder ids of subscriptions made by a call
        self.result = None  # what the last consent_transfer returned

    # -- queries ---------------------------------------------------------
    def active(self, p, c, kind):
        return [i for i, s in self.subs.items()
                if s['partner'] == p and s['customer'] == c and s['kind'] == kind
                and s['status'] == 'active']

    def eligible(self, p, c, svc, t):
        for s in self.subs.values():
            if s['kind'] != 'license' or s['partner'] != p or s['customer'] != c:
                continue
            overage, services = SKUS[s['product']]
            if not overage or svc not in services:
                continue
            if s['created'] <= t and (s['ended'] is None or s['ended'] > t):
                return True
        return False

    def change_holder(self, c, svc, p, sub, t, reason, reseller=None):
        old = self.holders.get((c, svc))
        self.log.append((c, svc, old['partner'] if old else None, old['sub'] if old else None,
                         p, sub, t, reason, old['reseller'] if old else None, reseller))
        self.holders[(c, svc)] = {'partner': p, 'sub': sub, 'since': t, 'reseller': reseller}
        if reason != 'transfer':
            # any other holder change supersedes the pending transfer
            # (expired instead when it comes at or after the expiry)
            for x in self.transfers.values():
                if x['c'] == c and x['svc'] == svc and x['status'] == 'pending':
                    x['status'] = 'expired' if x['expires'] <= t else 'superseded'
                    x['closed'] = min(x['expires'], max(t, x['requested']))

    def new_sub(self, p, c, kind, t, product=None, qty=None):
        self.pending += 1
        key = 'new%d' % self.pending
        self.subs[key] = {'partner': p, 'customer': c, 'kind': kind, 'product': product,
                          'quantity': qty, 'status': 'active', 'created': t, 'ended': None,
                          'changed': t,
                          'qhist': [[t, None, qty]] if kind == 'license' else []}
        return key

    # -- the API, as SPEC and the README say it behaves --------------------
    # Each returns None on success or the SQLSTATE; on failure the model is
    # left unchanged (the caller works on a copy).

    def target_error(self, p, c, sub, t):
        s = self.subs[sub]
        if s['partner'] != p or s['customer'] != c or s['kind'] not in TARGET_KINDS:
            return 'OV003'
        if s['created'] > t or (s['ended'] is not None and s['ended'] <= t):
            return 'OV003'
        return None

    def purchase(self, p, c, product, qty, t):
        if None in (p, c, product, qty, t):
            return '22004'
        if p not in PARTNERS or c not in CUSTOMERS or product not in SKUS:
            return '23503'
        if qty <= 0:
            return '22023'
        overage, services = SKUS[product]
        overage_sub = None
        if overage:
            if not self.active(p, c, 'azure_plan'):
                self.new_sub(p, c, 'azure_plan', t)
                self.new_sub(p, c, 'azure_subscription', t)
            subs = self.active(p, c, 'overage')
            overage_sub = subs[0] if subs else self.new_sub(p, c, 'overage', t)
        self.new_sub(p, c, 'license', t, product, qty)
        if overage:
            for svc in sorted(services):
                if (c, svc) in self.holders:
                    continue        # first-in only once; never re-enables None
                err = self.target_error(p, c, overage_sub, t)
                if err:
                    return err
                self.change_holder(c, svc, p, overage_sub, t, 'first-in')
        return None

    def set_quantity(self, sub, qty, t):
        if None in (sub, qty, t):
            return '22004'
        if sub not in self.subs:
            return '23503'
        s = self.subs[sub]
        if s['kind'] != 'license':
            return '42809'
        if qty <= 0:
            return '22023'
        if s['status'] != 'active':
            return '55000'
        if t < s['changed']:
            return 'OV005'
        if qty != s['quantity']:
            # the quantity changes at t: a period that began at t is
            # overwritten, otherwise the open one ends at t
            h = s['qhist']
            if h and h[-1][1] is None and h[-1][0] == t:
                h[-1][2] = qty
            else:
                if h and h[-1][1] is None:
                    h[-1][1] = t
                h.append([t, None, qty])
        s['quantity'] = qty
        s['changed'] = t
        return None

    def cancel(self, sub, t):
        if None in (sub, t):
            return '22004'
        if sub not in self.subs:
            return '23503'
        s = self.subs[sub]
        if s['status'] != 'active':
            return '55000'
        if t < s['changed']:
            return 'OV005'
        if any(h['sub'] == sub for h in self.holders.values()):
            return '55000'
        s['status'] = 'cancelled'
        s['ended'] = t
        s['changed'] = t
        if s['kind'] == 'license':
            # the open quantity period ends at t; an empty one goes
            h = s['qhist']
            if h and h[-1][1] is None and h[-1][0] >= t:
                h.pop()
            if h and h[-1][1] is None:
                h[-1][1] = t
        if s['kind'] == 'license':
            overage, services = SKUS[s['product']]
            if overage:
                for svc in sorted(services):
                    h = self.holders.get((s['customer'], svc))
                    if h is None or h['partner'] != s['partner']:
                        continue
                    if self.eligible(s['partner'], s['customer'], svc, t):
                        continue
                    if t < h['since']:
                        return 'OV005'
                    self.change_holder(s['customer'], svc, None, None, t, 'licence-ended')
        return None

    def create_azure(self, p, c, t):
        if None in (p, c, t):
            return '22004'
        if p not in PARTNERS or c not in CUSTOMERS:
            return '23503'
        if not self.active(p, c, 'azure_plan'):
            return '55000'
        self.new_sub(p, c, 'azure_subscription', t)
        return None

    def assign(self, p, c, svc, sub, t, reseller=None):
        if None in (p, c, svc, sub, t):
            return '22004'
        if p not in PARTNERS or c not in CUSTOMERS or svc not in SERVICES or sub not in self.subs:
            return '23503'
        if reseller is not None:
            if reseller not in PARTNERS:
                return '23503'
            if reseller == p:
                return '22023'      # a partner is not its own reseller
        h = self.holders.get((c, svc))
        if h is not None:
            if t < h['since']:
                return 'OV005'
            if h['partner'] == p and h['sub'] == sub and h['reseller'] == reseller:
                return None         # no change, nothing logged
        if not self.eligible(p, c, svc, t):
            return 'OV001'
        err = self.target_error(p, c, sub, t)
        if err:
            return err
        if h is not None and h['partner'] is not None and h['partner'] != p:
            return 'OV002'
        self.change_holder(c, svc, p, sub, t, 'assign', reseller)
        return None

    # -- the three-party transfer (1.2) -----------------------------------
    def request(self, to_p, c, svc, sub, t, reseller):
        if None in (to_p, c, svc, sub, t):
            return '22004'
        if to_p not in PARTNERS or c not in CUSTOMERS or svc not in SERVICES or sub not in self.subs:
            return '23503'
        if reseller is not None:
            if reseller not in PARTNERS:
                return '23503'
            if reseller == to_p:
                return '22023'
        h = self.holders.get((c, svc))
        if h is None or h['partner'] is None or h['partner'] == to_p:
            return 'OV010'          # nothing to transfer
        if t < h['since']:
            return 'OV005'
        if not self.eligible(to_p, c, svc, t):
            return 'OV001'
        err = self.target_error(to_p, c, sub, t)
        if err:
            return err
        for x in self.transfers.values():
            if x['c'] == c and x['svc'] == svc and x['status'] == 'pending' and x['expires'] <= t:
                x['status'], x['closed'] = 'expired', x['expires']
        if any(x['c'] == c and x['svc'] == svc and x['status'] == 'pending'
               for x in self.transfers.values()):
            return 'OV009'
        self.transfers['new-transfer'] = {
            'c': c, 'svc': svc, 'from': h['partner'], 'to': to_p, 'sub': sub, 'reseller': reseller,
            'requested': t, 'holder': None, 'customer': None, 'expires': t + 7 * 1440,
            'status': 'pending', 'closed': None}
        return None

    def _step(self, tid, party, t, parties):
        """the checks every step makes; returns (error, transfer)"""
        if tid is None or party is None:
            return '22004', None
        if party not in parties:
            return '22023', None
        if tid not in self.transfers:
            return '23503', None
        if t is None:
            return '22004', None
        x = self.transfers[tid]
        if x['status'] != 'pending':
            return 'OV009', x
        if t >= x['expires']:
            x['status'], x['closed'] = 'expired', x['expires']
            return None, x
        if t < max(v for v in (x['requested'], x['holder'], x['customer']) if v is not None):
            return 'OV005', x
        return None, x

    def consent(self, tid, party, t):
        err, x = self._step(tid, party, t, ('holder', 'customer'))
        if err or x['status'] != 'pending':
            return err, (x['status'] if x else None)
        if x[party] is not None:
            return None, 'pending'  # consenting again changes nothing
        x[party] = t
        if x['holder'] is None or x['customer'] is None:
            return None, 'pending'
        # the completion, judged again by the holder rules
        h = self.holders[(x['c'], x['svc'])]
        if t < h['since']:
            return 'OV005', None
        if not self.eligible(x['to'], x['c'], x['svc'], t):
            return 'OV001', None
        err = self.target_error(x['to'], x['c'], x['sub'], t)
        if err:
            return err, None
        self.change_holder(x['c'], x['svc'], x['to'], x['sub'], t, 'transfer', x['reseller'])
        x['status'], x['closed'] = 'completed', t
        return None, 'completed'

    def decline(self, tid, party, t):
        err, x = self._step(tid, party, t, ('holder', 'customer'))
        if err or x['status'] != 'pending':
            return err
        x['status'], x['closed'] = 'declined', t
        return None

    def withdraw(self, tid, t):
        err, x = self._step(tid, 'requester', t, ('requester',))
        if err or x['status'] != 'pending':
            return err
        x['status'], x['closed'] = 'withdrawn', t
        return None

    def release(self, p, c, svc, t):
        if None in (p, c, svc, t):
            return '22004'
        if p not in PARTNERS or c not in CUSTOMERS or svc not in SERVICES:
            return '23503'
        h = self.holders.get((c, svc))
        if h is None or h['partner'] is None:
            return None             # already None: no-op
        if h['partner'] != p:
            return 'OV004'
        if t < h['since']:
            return 'OV005'
        self.change_holder(c, svc, None, None, t, 'release')
        return None


def copy_model(m):
    n = Model()
    n.subs = {k: dict(v, qhist=[list(x) for x in v['qhist']]) for k, v in m.subs.items()}
    n.holders = {k: dict(v) for k, v in m.holders.items()}
    n.log = list(m.log)
    n.transfers = {k: dict(v) for k, v in m.transfers.items()}
    n.pending = 0
    return n


class Scenario:
    def __init__(self, psql, seed, steps):
        self.db = psql
        self.seed = seed
        self.rng = random.Random(seed)
        self.steps = steps
        self.model = Model()
        self.clock = 0
        self.history = []

    def fail(self, what):
        lines = ['DISAGREEMENT in scenario seed %d, step %d: %s' % (self.seed, len(self.history), what),
                 'last calls:']
        lines += ['  ' + h for h in self.history[-15:]]
        raise Disagreement('\n'.join(lines))

    # -- random calls ----------------------------------------------------
    def instant(self, may_go_back):
        self.clock += self.rng.choice([0, 0, 5, 30, 60, 60, 240, 1440])
        if may_go_back and self.rng.random() < 0.15:
            return max(0, self.clock - self.rng.choice([1, 30, 600, 3000]))
        return self.clock

    def pick_sub(self, kinds=None, p=None, c=None):
        ids = [i for i, s in self.model.subs.items()
               if (kinds is None or s['kind'] in kinds)
               and (p is None or s['partner'] == p) and (c is None or s['customer'] == c)]
        return self.rng.choice(sorted(ids)) if ids else None

    def transfer_call(self, op):
        """request_transfer and the steps of a transfer, mostly plausible"""
        r, m = self.rng, self.model
        # now and then past a pending transfer's expiry (7 days)
        if r.random() < 0.08:
            self.clock += 7 * 1440
        if op != 'request' and not m.transfers:
            op = 'request'
        if op == 'request':
            # mostly a partner with a live overage licence for a (customer,
            # service) another partner holds
            cands = sorted(set((s['partner'], s['customer'], svc) for s in m.subs.values()
                               if s['kind'] == 'license' and s['status'] == 'active'
                               and SKUS[s['product']][0] for svc in SKUS[s['product']][1]
                               if m.holders.get((s['customer'], svc), {}).get('partner')
                               not in (None, s['partner'])))
            if cands and r.random() < 0.8:
                p, c, svc = r.choice(cands)
            else:
                held = sorted(k for k, h in m.holders.items() if h['partner'] is not None)
                c, svc = r.choice(held) if held and r.random() < 0.85 else (r.choice(CUSTOMERS), r.choice(SERVICES))
                p = r.choice(PARTNERS)
            sub = self.pick_sub(TARGET_KINDS, p, c) if r.random() < 0.85 else None
            if sub is None:
                sub = self.pick_sub()
            reseller = r.choice(PARTNERS) if r.random() < 0.2 else None
            args = [p, c, svc, sub, self.instant(r.random() < 0.3), reseller]
            if r.random() < 0.04:
                args[r.choice([0, 2, 3])] = None
            return op, args
        ids = sorted(m.transfers)
        pending = [k for k in ids if m.transfers[k]['status'] == 'pending']
        tid = r.choice(pending) if pending and r.random() < 0.85 else (r.choice(ids) if ids else None)
        if tid is None or r.random() < 0.03:
            tid = r.choice([None, '00000000-0000-0000-0000-000000000000'])
        t = self.instant(r.random() < 0.3) if r.random() > 0.03 else None
        if op == 'withdraw':
            return op, [tid, t]
        party = r.choice(['holder', 'customer']) if r.random() > 0.04 else r.choice(['reseller', None])
        return op, [tid, party, t]

    def random_call(self):
        r = self.rng
        op = r.choices(['purchase', 'set_quantity', 'cancel', 'assign', 'release', 'create_azure',
                        'request', 'consent', 'decline', 'withdraw'],
                       [24, 10, 12, 18, 10, 6, 14, 22, 3, 3])[0]
        if op in ('request', 'consent', 'decline', 'withdraw'):
            return self.transfer_call(op)
        if op == 'purchase':
            args = [r.choice(PARTNERS), r.choice(CUSTOMERS), r.choice(sorted(SKUS)),
                    r.choice([1, 2, 5, 10, 25]) if r.random() > 0.05 else r.choice([0, -1]),
                    self.instant(False)]
        elif op == 'set_quantity':
            args = [self.pick_sub(['license'] if r.random() < 0.85 else None),
                    r.choice([1, 3, 7, 40]) if r.random() > 0.05 else 0, self.instant(True)]
        elif op == 'cancel':
            args = [self.pick_sub(['license'] if r.random() < 0.6 else None), self.instant(True)]
        elif op == 'create_azure':
            args = [r.choice(PARTNERS), r.choice(CUSTOMERS), self.instant(False)]
        elif op == 'assign':
            p, c = r.choice(PARTNERS), r.choice(CUSTOMERS)
            licensed = sorted(set((s['partner'], s['customer']) for s in self.model.subs.values()
                                  if s['kind'] == 'license' and s['status'] == 'active'))
            if licensed and r.random() < 0.6:
                p, c = r.choice(licensed)   # mostly partners that might be eligible
            sub = self.pick_sub(TARGET_KINDS, p, c) if r.random() < 0.75 else None
            if sub is None:
                sub = self.pick_sub()
            services = sorted(set(svc for s in self.model.subs.values()
                                  if s['kind'] == 'license' and s['status'] == 'active'
                                  and s['partner'] == p and s['customer'] == c
                                  and SKUS[s['product']][0] for svc in SKUS[s['product']][1]))
            svc = r.choice(services) if services and r.random() < 0.7 else r.choice(SERVICES)
            # two-tier: now and then for an indirect reseller
            args = [p, c, svc, sub, self.instant(True), r.choice(PARTNERS) if r.random() < 0.25 else None]
        else:
            args = [r.choice(PARTNERS), r.choice(CUSTOMERS), r.choice(SERVICES), self.instant(True)]
        # some invalid arguments: NULL or unknown
        if r.random() < 0.06:
            i = r.randrange(len(args))
            args[i] = None
        elif r.random() < 0.05:
            i = r.randrange(len(args))
            if isinstance(args[i], str) and not args[i].startswith('new'):
                args[i] = 'zz' if args[i] not in self.model.subs else '00000000-0000-0000-0000-000000000000'
        return op, args

    def sql_for(self, op, a):
        def t(v):
            return 'NULL::timestamptz' if v is None else "'%s+00'" % ts(v)

        def u(v):
            return 'NULL::uuid' if v is None else "'%s'::uuid" % v
        if op == 'purchase':
            return "SELECT overage.purchase(%s, %s, %s, %s, %s, %s)" % (
                lit(a[0]), lit(a[1]), lit(a[2]), "'1'" if a[2] is not None else 'NULL',
                lit(a[3]) if a[3] is not None else 'NULL::int', t(a[4]))
        if op == 'set_quantity':
            return "SELECT overage.set_quantity(%s, %s, %s)" % (
                u(a[0]), lit(a[1]) if a[1] is not None else 'NULL::int', t(a[2]))
        if op == 'cancel':
            return "SELECT overage.cancel(%s, %s)" % (u(a[0]), t(a[1]))
        if op == 'create_azure':
            return "SELECT overage.create_azure_subscription(%s, %s, %s)" % (lit(a[0]), lit(a[1]), t(a[2]))
        if op == 'assign':
            return "SELECT overage.assign_overage(%s, %s, %s, %s, %s, %s)" % (
                lit(a[0]), lit(a[1]), lit(a[2]), u(a[3]), t(a[4]), lit(a[5]) + '::text')
        if op == 'request':
            return "SELECT overage.request_transfer(%s, %s, %s, %s, %s, %s)" % (
                lit(a[0]) + '::text', lit(a[1]), lit(a[2]) + '::text', u(a[3]), t(a[4]), lit(a[5]) + '::text')
        if op in ('consent', 'decline'):
            return "SELECT overage.%s_transfer(%s, %s, %s)" % (op, u(a[0]), lit(a[1]) + '::text', t(a[2]))
        if op == 'withdraw':
            return "SELECT overage.withdraw_transfer(%s, %s)" % (u(a[0]), t(a[1]))
        return "SELECT overage.release_overage(%s, %s, %s, %s)" % (lit(a[0]), lit(a[1]), lit(a[2]), t(a[3]))

    def predict(self, op, a):
        m = copy_model(self.model)
        if op == 'purchase':
            err = m.purchase(a[0], a[1], a[2], a[3], a[4])
        elif op == 'set_quantity':
            err = m.set_quantity(a[0], a[1], a[2])
        elif op == 'cancel':
            err = m.cancel(a[0], a[1])
        elif op == 'create_azure':
            err = m.create_azure(a[0], a[1], a[2])
        elif op == 'assign':
            err = m.assign(a[0], a[1], a[2], a[3], a[4], a[5])
        elif op == 'request':
            err = m.request(*a)
        elif op == 'consent':
            err, m.result = m.consent(*a)
        elif op == 'decline':
            err = m.decline(*a)
        elif op == 'withdraw':
            err = m.withdraw(*a)
        else:
            err = m.release(a[0], a[1], a[2], a[3])
        return err, m

    # -- one step --------------------------------------------------------
    def step(self):
        op, args = self.random_call()
        sql = self.sql_for(op, args)
        expected_err, after = self.predict(op, args)
        out = self.db.run("SELECT pg_temp.model_try(%s)" % ("$q$" + sql + "$q$"))
        if len(out) != 1:
            self.fail('unexpected psql output %r for %s' % (out, sql))
        res = json.loads(out[0])
        got = None if res['ok'] else res['sqlstate']
        self.history.append('%s -> %s%s' % (sql, 'ok' if got is None else got,
                                             ' (%s)' % res['message'] if not res['ok'] else
                                             ' ' + res['result'] if op == 'consent' else ''))
        if got != expected_err:
            self.fail('%s: model expects %s, database says %s%s' % (
                sql, expected_err or 'success', got or 'success',
                '' if res['ok'] else ' (%s)' % res['message']))
        if got is None:
            if op == 'consent' and res['result'] != after.result:
                self.fail('%s: model expects %s, database returns %s' % (sql, after.result, res['result']))
            if op == 'request':
                after.transfers[res['result']] = after.transfers.pop('new-transfer')
            self.model = after
        self.check(op, res)

    def check(self, op, res):
        out = self.db.run("SELECT pg_temp.model_state()")
        try:
            st = json.loads(out[-1])
        except (ValueError, IndexError):
            self.fail('cannot read the state: %r' % out)
        m = self.model
        # bind subscriptions the call made to the ids the database gave them
        new = {k: v for k, v in m.subs.items() if k.startswith('new')}
        if new:
            known = set(k for k in m.subs if not k.startswith('new'))
            fresh = [row for row in st['subs'] if row[0] not in known]
            if len(fresh) != len(new):
                self.fail('model expects %d new subscriptions, database made %d: %r'
                          % (len(new), len(fresh), fresh))
            for key, s in sorted(new.items(), key=lambda kv: int(kv[0][3:])):
                match = [row for row in fresh if row[3] == s['kind']]
                if len(match) != 1:
                    self.fail('cannot bind new %s subscription: %r' % (s['kind'], fresh))
                real = match[0][0]
                fresh.remove(match[0])
                m.subs[real] = m.subs.pop(key)
                for h in m.holders.values():
                    if h['sub'] == key:
                        h['sub'] = real
                m.log = [tuple(real if x == key else x for x in entry) for entry in m.log]
            if op == 'purchase' and res['result'] not in m.subs:
                self.fail('purchase returned %s, not a known licence' % res['result'])
            if op == 'purchase' and m.subs[res['result']]['kind'] != 'license':
                self.fail('purchase returned a %s subscription' % m.subs[res['result']]['kind'])
        # subscriptions
        want = sorted([k, s['partner'], s['customer'], s['kind'], s['product'], s['quantity'],
                       s['status'], ts(s['created']), ts(s['ended']) if s['ended'] is not None else None]
                      for k, s in m.subs.items())
        if want != sorted(st['subs']):
            self.fail('subscriptions differ:\n  model    %r\n  database %r' % (want, sorted(st['subs'])))
        # quantity history of the licences
        want = sorted([k, f, ts(tt) if tt is not None else None, q]
                      for k, s in m.subs.items() for f0, tt, q in s['qhist'] for f in [ts(f0)])
        if want != sorted(st['quantities']):
            self.fail('license_quantity differs:\n  model    %r\n  database %r' % (want, sorted(st['quantities'])))
        # holders, as get_overage shows them
        want = sorted([c, svc, h['partner'], h['sub'], ts(h['since'])]
                      for (c, svc), h in m.holders.items())
        if want != st['holders']:
            self.fail('get_overage differs:\n  model    %r\n  database %r' % (want, st['holders']))
        want = sorted([c, svc, h['reseller']] for (c, svc), h in m.holders.items())
        if want != st['resellers']:
            self.fail('holder resellers differ:\n  model    %r\n  database %r' % (want, st['resellers']))
        # the transfers, every step
        def tsn(v):
            return ts(v) if v is not None else None
        want = sorted([k, x['c'], x['svc'], x['from'], x['to'], x['sub'], x['reseller'],
                       ts(x['requested']), tsn(x['holder']), tsn(x['customer']), ts(x['expires']),
                       x['status'], tsn(x['closed'])] for k, x in m.transfers.items())
        if want != st['transfers']:
            self.fail('transfers differ:\n  model    %r\n  database %r' % (want, st['transfers']))
        # the audit log: one row per change
        want = [[e[0], e[1], e[2], e[3], e[4], e[5], ts(e[6]), e[7], e[8], e[9]] for e in m.log]
        if want != st['log']:
            self.fail('assignment_log differs:\n  model    %r\n  database %r' % (want, st['log']))
        # holder history
        if st['overlaps'] != 0:
            self.fail('holder_period has %d overlapping pairs' % st['overlaps'])
        want = [[c, svc, 1] for (c, svc) in sorted(m.holders)]
        if want != st['open_periods']:
            self.fail('open holder periods: model %r, database %r' % (want, st['open_periods']))
        if st['periods_not_logged'] != 0:
            self.fail('%d holder periods begin without a matching audit row' % st['periods_not_logged'])

    def run(self):
        out = self.db.run(SETUP)
        if any('ERROR' in line for line in out):
            raise RuntimeError('setup failed: %r' % out)
        for _ in range(self.steps):
            self.step()
        return self.history, [e[7] for e in self.model.log] + \
            ['transfer ' + x['status'] for x in self.model.transfers.values()]


def main():
    db = sys.argv[1]
    scenarios = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    steps = int(sys.argv[3]) if len(sys.argv) > 3 else 60
    psql = Psql(db)
    psql.run("SET client_min_messages = warning")
    psql.run("SET timezone = 'UTC'")
    psql.run("SET check_function_bodies = off")  # the extension comes per scenario
    psql.run(HELPERS)
    totals = {}
    try:
        for n in range(scenarios):
            seed = 1000 + n
            history, reasons = Scenario(psql, seed, steps).run()
            for reason in reasons:
                totals[('holder change', reason)] = totals.get(('holder change', reason), 0) + 1
            for h in history:
                outcome = h.split(' -> ')[1].split(' ')[0]
                if outcome == 'ok' and 'consent_transfer' in h:
                    outcome = 'ok ' + h.split(' -> ')[1].split(' ')[1]
                op = h.split('(')[0].replace('SELECT overage.', '')
                totals[(op, outcome)] = totals.get((op, outcome), 0) + 1
    except Disagreement as e:
        print(e)
        return 1
    finally:
        psql.close()
    print('%d scenarios x %d steps agree with the model' % (scenarios, steps))
    for (op, outcome), k in sorted(totals.items()):
        print('  %-26s %-13s %4d' % (op, outcome, k))
    return 0


if __name__ == '__main__':
    sys.exit(main())
