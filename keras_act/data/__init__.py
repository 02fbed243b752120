"""Text and pre-training data of keras-act, one idea per module.

- `keras_act.data.text_corpus`: plain-text files to documents (lists of
  sentences), WikiText markup cleaned (TensorFlow-free);
- `keras_act.data.sentence_order`: documents to sentence-order-prediction
  (SOP) pairs, as ALBERT's `create_pretraining_data` (NumPy);
- `keras_act.data.masking`: dynamic masked-LM masking of one packed example,
  in the graph (TensorFlow);
- `keras_act.data.pretraining_dataset`: the `tf.data` pipeline that packs
  and masks SOP pairs for pre-training (TensorFlow).

Import the module you need; this package imports none of them until one is
used (`keras_act.data.text_corpus` after `import keras_act` works).
"""

from keras_act.lazy_imports import lazy_attributes

__getattr__, __dir__, __all__ = lazy_attributes(__name__, __file__)
