import struct, numpy as np, sys
DT = [np.float32, np.int8, np.int16, np.int32, np.float16, None]  # bfloat16 unsupported here
def read_ct2(path):
    with open(path, "rb") as f:
        buf = f.read()
    off = 0
    def u(fmt):
        nonlocal off
        v = struct.unpack_from(fmt, buf, off); off += struct.calcsize(fmt); return v[0]
    def s():
        nonlocal off
        n = u("H"); v = buf[off:off+n-1].decode(); off += n; return v
    ver = u("I"); name = s(); rev = u("I"); n = u("I")
    vars_ = {}
    for _ in range(n):
        k = s(); rank = u("B"); shape = [u("I") for _ in range(rank)]
        dt = u("B"); nb = u("I")
        arr = np.frombuffer(buf, dtype=DT[dt], count=nb // np.dtype(DT[dt]).itemsize, offset=off).reshape(shape)
        off += nb; vars_[k] = arr
    na = u("I"); aliases = {}
    for _ in range(na):
        a = s(); t = s(); aliases[a] = t
    return dict(version=ver, name=name, revision=rev, vars=vars_, aliases=aliases)
if __name__ == "__main__":
    m = read_ct2(sys.argv[1])
    print(m["version"], m["name"], m["revision"], m["aliases"])
    for k, v in m["vars"].items():
        if "layer_" in k and "layer_0/" not in k: continue
        print(k, v.shape, v.dtype)
