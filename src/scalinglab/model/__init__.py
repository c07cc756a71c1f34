"""The GPT model family: shapes, parameter and FLOP accounting (pure), and (with the train extra) the
module."""
