"""``edgekd bench``: latency and accuracy on the device.  Needs only numpy and onnxruntime (or TensorRT):
nothing here imports torch unless ``--backend torch`` is asked for."""
