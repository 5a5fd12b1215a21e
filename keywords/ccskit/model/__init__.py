"""Model-based generative testing of a CCS server.

``state`` is a reference model of docs/protocol.md (no I/O): it predicts every reply and every
frame each connected device must receive. ``driver`` performs the same actions on a real server
(WebSockets, REST, SQL); ``observe`` compares what the server did with the prediction;
``machine`` lets Hypothesis generate, run and shrink random walks; ``steps`` renders a walk as
numbered plain-English steps and as a ready-to-paste Robot Framework test; ``runner`` runs walks
for a seed and a time budget.
"""
