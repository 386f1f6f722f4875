"""The emulator's world: line, nodes, sources, sound propagation, synthesized audio, truth, score.

Data flows one way: a scenario (scenario.py) builds a world (world.py) and a timeline of
sources (sources.py); propagation.py says when and how loud each source reaches each node;
synth.py turns that into the samples a node's microphone gets; truth.py writes what really
happened; score.py compares the commission's incidents with it.
"""
