# Reproduces CPython gh-106905: PyAST_mod2obj keeps its recursion depth in
# per-interpreter state. When a garbage collection inside it runs a Python
# finalizer, the GIL can pass to another thread's ast.parse, and the depth
# check then fails with "AST constructor recursion depth mismatch".
import ast, gc, sys, threading
sys.setswitchinterval(1e-6)
gc.set_threshold(50, 1, 1)
class Cyclic:
    def __init__(self): self.me = self
    def __del__(self): sum(range(50))  # Python code: the eval loop may switch threads
src = "lambda x: " + "(" * 30 + "x" + ")" * 30 + " + [i for i in range(3)]"
errors = []
def work():
    for _ in range(3000):
        for _ in range(5): Cyclic()
        try:
            ast.parse(src)
        except SystemError as e:
            errors.append(str(e))
ts = [threading.Thread(target=work) for _ in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]
print(sys.version.split()[0], "SystemErrors:", len(errors), errors[:1])
