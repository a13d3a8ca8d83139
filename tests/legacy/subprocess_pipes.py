"""subprocess.run/check_output/Popen.communicate with pipes, input, a failing child and a timeout."""

import subprocess
import sys

PY = sys.executable

done = subprocess.run(
    [PY, "-c", "import sys; print(sys.stdin.read().upper())"],
    input="hello pipes",
    capture_output=True,
    text=True,
    check=True,
)
print("run:", done.returncode, repr(done.stdout))

out = subprocess.check_output(["sh", "-c", "echo one; echo two >&2; echo three"], stderr=subprocess.STDOUT)
print("check_output:", sorted(out.decode().split()))

try:
    subprocess.run([PY, "-c", "import sys; sys.exit(5)"], check=True)
except subprocess.CalledProcessError as exc:
    print("called process error:", exc.returncode)

proc = subprocess.Popen(
    [PY, "-c", "import sys\nfor line in sys.stdin: print(len(line.strip()))"],
    stdin=subprocess.PIPE,
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    text=True,
)
stdout, stderr = proc.communicate("a\nbb\nccc\n" * 1000, timeout=30)
print("communicate:", proc.returncode, len(stdout.split()), sum(map(int, stdout.split())), repr(stderr))

try:
    subprocess.run(["sleep", "5"], timeout=0.5)
except subprocess.TimeoutExpired as exc:
    print("timeout expired:", exc.cmd)

big = subprocess.run([PY, "-c", "import sys; sys.stdout.write('x' * 1_000_000)"], stdout=subprocess.PIPE)
print("a megabyte through a pipe:", len(big.stdout))

print("call:", subprocess.call(["sh", "-c", "exit 7"]))
