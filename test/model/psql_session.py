"""A psql session driven through a pipe, shared by the model tests.

Python standard library only: the tests drive the real server through psql,
as an application would, without a driver package.
"""
import subprocess


class Psql:
    """One psql session; run() returns the text lines a statement printed."""

    def __init__(self, db):
        self.p = subprocess.Popen(
            ['psql', '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=0', '-d', db],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, bufsize=1)

    def run(self, sql):
        self.p.stdin.write(sql.rstrip().rstrip(';') + ';\n\\echo __END__\n')
        self.p.stdin.flush()
        out = []
        while True:
            line = self.p.stdout.readline()
            if line == '':
                raise RuntimeError('psql ended; output so far: %r' % out)
            line = line.rstrip('\n')
            if line == '__END__':
                return out
            out.append(line)

    def one(self, sql):
        out = self.run(sql)
        if len(out) != 1:
            raise RuntimeError('expected one line from %s, got %r' % (sql, out))
        return out[0]

    def close(self):
        self.p.stdin.close()
        self.p.wait()
