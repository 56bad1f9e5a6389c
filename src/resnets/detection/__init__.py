"""ResNet as a detection backbone (the paper's section 4 and appendix: Faster R-CNN on COCO).

Plain PyTorch throughout (torchvision's compiled NMS and RoIAlign do not load beside a CPU
build of torch): ``ops`` (box IoU, box coding, NMS, RoIAlign), ``coco`` (COCO-format folders,
validated, and a generated set made from the shared CIFAR-10 images), ``metrics`` (COCO mAP
through pycocotools). Box format: ``(x1, y1, x2, y2)`` in pixels, as torchvision's detection
models take them; COCO files store ``(x, y, w, h)``.
"""
