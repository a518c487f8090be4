#!/usr/bin/env python3
"""Serialized sizes of the SEAL objects the cost model charges (pi_core::cost::he).

Measures, with Microsoft SEAL as bundled by TenSEAL (`pip install tenseal==0.3.18`), the bytes
SEAL's `save` writes for a fresh public-key ciphertext, a seeded symmetric ciphertext, a
ciphertext mod-switched to the next level, and the keys a client uploads, for the three
parameter sets the protocols use:

  delphi      BFV N = 8192, CoeffModulus::BFVDefault(8192) (43+43+44+44+44 bits), t = 2061584302081
              (mc2-project/delphi, protocols-sys/c++/src/lib/interface.{h,cpp})
  cryptflow2  BFV N = 8192, {60, 60, 60, 49}, t = 65537 stand-in for SCI's prime
              (EzPC SCI/src/LinearHE/utils-HE.cpp)
  cheetah     BFV N = 4096, {60, 49}, no special prime, t = 2^41 stand-in
              (OpenCheetah SCI/src/cheetah/cheetah-api.cpp)

Each figure is what `save` writes with SEAL's default compression (zstd): the protocols' own
builds serialize the same way (Delphi's CMake sets SEAL_USE_ZSTD ON). Keys are measured unseeded;
the protocols save them as seeded `Serializable`s, about half as large (docs/PROTOCOL.md §5.3).
Cheetah's patched SEAL (no special prime) is not available here: only its public key at one
prime is printed, for reference. Usage: python3 scripts/he-sizes.py  (about a minute)
"""
import os
import tempfile

import tenseal.sealapi as s

PARAMS = {
    "delphi": (8192, None, 2061584302081, True),
    "cryptflow2": (8192, [60, 60, 60, 49], 65537, True),
    "cheetah": (4096, [60, 49], 65537, False),
}


def size(obj, compr):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "x")
        if compr is None:
            obj.save(path)
        else:
            obj.save(path, compr)
        return os.path.getsize(path)


def main():
    for name, (n, bits, t, special) in PARAMS.items():
        parms = s.EncryptionParameters(s.SCHEME_TYPE.BFV)
        parms.set_poly_modulus_degree(n)
        moduli = (
            s.CoeffModulus.BFVDefault(n, s.SEC_LEVEL_TYPE.TC128)
            if bits is None
            else s.CoeffModulus.Create(n, bits)
        )
        parms.set_coeff_modulus(moduli)
        parms.set_plain_modulus(s.Modulus(t))
        ctx = s.SEALContext(parms, True, s.SEC_LEVEL_TYPE.NONE)
        kg = s.KeyGenerator(ctx)
        pk = s.PublicKey()
        kg.create_public_key(pk)
        sk = kg.secret_key()
        enc = s.Encryptor(ctx, pk)
        enc.set_secret_key(sk)
        ev = s.Evaluator(ctx)
        pt = s.Plaintext("1x^3 + 2")
        fresh = s.Ciphertext(ctx)
        enc.encrypt(pt, fresh)
        sym = s.Ciphertext(ctx)
        enc.encrypt_symmetric(pt, sym)
        print(f"{name}: N={n}, moduli={[m.bit_count() for m in moduli]}")
        print(f"  fresh ciphertext: {fresh.coeff_modulus_size()} RNS primes, {size(fresh, None)} B")
        if ev is not None and fresh.coeff_modulus_size() > 1:
            low = s.Ciphertext(ctx)
            ev.mod_switch_to_next(fresh, low)
            print(f"  mod-switched ciphertext: {low.coeff_modulus_size()} primes, {size(low, None)} B")
        print(f"  public key: {size(pk, None)} B")
        if special:
            gk = s.GaloisKeys()
            kg.create_galois_keys(gk)
            rk = s.RelinKeys()
            kg.create_relin_keys(rk)
            print(f"  Galois keys ({gk.size()}, SEAL's default set): {size(gk, None)} B")
            print(f"  relinearization key: {size(rk, None)} B")


if __name__ == "__main__":
    main()
