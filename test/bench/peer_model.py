#!/usr/bin/env python3
"""
Checks the benchmark's plain-SQL formulations (peers.sql) against the
independent metering model (test/model/metering_model.py) on its random
scenarios: calls before any licence, groups without licence or holder,
zero-length holder periods, ties, calls at change instants and at month
edges, pools that grow and shrink.

The scenarios run as in the model test (the extension's own checks use
METER_RULE, 1.1 while the C is 1.1); at every preview and close the
1.2 model's lines must equal bench.sql_month's, bench.seg_month(m,
'recursive')'s, bench.win_month's and bench.ref_month's.

Usage (inside pgpriv/pg_virtualenv): peer_model.py DBNAME [SEEDS] [STEPS]
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'model'))
sys.dont_write_bytecode = True
import metering_model as mm  # noqa: E402

PEERS = ["bench.sql_month('%s')", "bench.seg_month('%s', 'recursive')", "bench.win_month('%s')",
         "bench.ref_month('%s')"]


class PeerScenario(mm.Scenario):
    def check_preview(self, mo):
        want = self.model.lines(mo, rule='1.2')
        for peer in PEERS:
            got = self.db_lines(peer % mo.isoformat())
            if got != want:
                self.fail('%s differs from the 1.2 model:\n  model    %s\n  peer     %s'
                          % (peer % mo, mm.fmt_lines(want), mm.fmt_lines(got)))
            self.count('peer checks')
        return super().check_preview(mo)


def main():
    db = sys.argv[1]
    seeds = int(sys.argv[2]) if len(sys.argv) > 2 else 12
    steps = int(sys.argv[3]) if len(sys.argv) > 3 else 250
    rule = os.environ.get('METER_RULE', '1.1')
    here = os.path.dirname(os.path.abspath(__file__))
    psql = mm.Psql(db)
    psql.run("SET client_min_messages = warning")
    psql.run("SET timezone = 'UTC'")
    psql.run("SET check_function_bodies = off")
    psql.run(mm.HELPERS)
    psql.run("DROP SCHEMA IF EXISTS bench CASCADE")
    psql.run("CREATE SCHEMA bench")
    out = psql.run("\\i %s/peers.sql" % here)
    if any('ERROR' in line for line in out):
        print(out)
        return 1
    totals = {}
    try:
        for seed in range(1, 1 + seeds):
            sc = PeerScenario(psql, seed, steps, rule)
            sc.run()
            for k, v in sc.stats.items():
                totals[k] = totals.get(k, 0) + v
    except mm.Disagreement as e:
        print(e)
        return 1
    finally:
        psql.close()
    print('%d seeds x %d steps: the plain-SQL formulations agree with the 1.2 model' % (seeds, steps))
    for what in ('peer checks', 'months closed where 1.1 and 1.2 differ', 'seeds where 1.1 and 1.2 lines differ'):
        print('  %-40s %5d' % (what, totals.get(what, 0)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
