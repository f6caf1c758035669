"""Signs a model with the `model_signing` reference implementation through its Python API, for
the serializations its 1.1.1 CLI cannot produce (shards, BLAKE3).

    python model_signing_api.py MODEL PRIVATE_KEY_PEM SIGNATURE {shards SIZE | blake3}
"""
import sys

from model_signing import hashing, signing

model, key, signature, mode = sys.argv[1:5]
hashing_config = hashing.Config()
if mode == "shards":
    hashing_config = hashing_config.use_shard_serialization(shard_size=int(sys.argv[5]))
elif mode == "blake3":
    hashing_config = hashing_config.use_file_serialization(hashing_algorithm="blake3")
else:
    sys.exit(f"unknown mode {mode}")
signing.Config().use_elliptic_key_signer(private_key=key).set_hashing_config(hashing_config).sign(
    model, signature
)
