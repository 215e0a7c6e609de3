"""LoRA fine-tuning with the exact inference prompt (:mod:`.finetune`)."""
