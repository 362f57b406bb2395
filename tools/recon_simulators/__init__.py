"""Local simulators of the Reveni, Cin7 Core and Sitoo APIs, and a scenario generator.

A separate package: the pipeline (``returns_recon``) never imports it. Each simulator is a
real HTTP server on 127.0.0.1 speaking its API as documented in ``shared/reference``.
"""
