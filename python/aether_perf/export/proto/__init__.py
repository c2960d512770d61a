"""pprof's profile.proto (the subset aether writes) and its generated module ``profile_pb2``.

``profile.proto`` says how ``profile_pb2.py`` and ``profile_pb2.pyi`` were generated.
"""
