#!/bin/bash
# TF-Slim's research/slim/scripts/finetune_inception_v3_on_flowers.sh,
# run with this project's scripts. Its flags are TF-Slim's; what changed:
# - paths, the step counts, the batch size and the train image size come from the
#   environment, defaulting to TF-Slim's values (IMAGE_SIZE unset: the net's
#   default size); `python` is $PYTHON (python3) and the scripts' full paths;
# - the evaluations' --eval_dir equal to the train dir (TF-Slim's) write to
#   <train dir>/eval, beside the checkpoints, so TensorBoard shows training and
#   evaluation side by side.
# The pre-trained checkpoint is TF-Slim's published one (read as it is); the
# second stage fine-tunes all layers from the first stage's train dir.
#
# Usage: bash scripts/slim/finetune_inception_v3_on_flowers.sh
#   (PRETRAINED_CHECKPOINT_DIR=... TRAIN_DIR=... DATASET_DIR=... MAX_STEPS=...
#    MAX_STEPS_ALL=... BATCH_SIZE=... IMAGE_SIZE=... PYTHON=...)
set -e

SLIM_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PYTHON=${PYTHON:-python3}

# Where the pre-trained InceptionV3 checkpoint is saved to.
PRETRAINED_CHECKPOINT_DIR=${PRETRAINED_CHECKPOINT_DIR:-/tmp/checkpoints}

# Where the training (fine-tuned) checkpoint and logs will be saved to.
TRAIN_DIR=${TRAIN_DIR:-/tmp/flowers-models/inception_v3}

# Where the dataset is saved to.
DATASET_DIR=${DATASET_DIR:-/tmp/flowers}

MAX_STEPS=${MAX_STEPS:-1000}
MAX_STEPS_ALL=${MAX_STEPS_ALL:-500}
BATCH_SIZE=${BATCH_SIZE:-32}
IMAGE_SIZE=${IMAGE_SIZE:-}

# Download the pre-trained checkpoint.
if [ ! -d "${PRETRAINED_CHECKPOINT_DIR}" ]; then
  mkdir -p "${PRETRAINED_CHECKPOINT_DIR}"
fi
if [ ! -f "${PRETRAINED_CHECKPOINT_DIR}/inception_v3.ckpt" ]; then
  wget http://download.tensorflow.org/models/inception_v3_2016_08_28.tar.gz
  tar -xvf inception_v3_2016_08_28.tar.gz
  mv inception_v3.ckpt "${PRETRAINED_CHECKPOINT_DIR}/inception_v3.ckpt"
  rm inception_v3_2016_08_28.tar.gz
fi

# Download the dataset
"${PYTHON}" "${SLIM_DIR}/download_and_convert_data.py" \
  --dataset_name=flowers \
  --dataset_dir="${DATASET_DIR}"

# Fine-tune only the new layers.
"${PYTHON}" "${SLIM_DIR}/train_image_classifier.py" \
  --train_dir="${TRAIN_DIR}" \
  --dataset_name=flowers \
  --dataset_split_name=train \
  --dataset_dir="${DATASET_DIR}" \
  --model_name=inception_v3 \
  --checkpoint_path="${PRETRAINED_CHECKPOINT_DIR}/inception_v3.ckpt" \
  --checkpoint_exclude_scopes=InceptionV3/Logits,InceptionV3/AuxLogits \
  --trainable_scopes=InceptionV3/Logits,InceptionV3/AuxLogits \
  --max_number_of_steps="${MAX_STEPS}" \
  --batch_size="${BATCH_SIZE}" \
  --learning_rate=0.01 \
  --learning_rate_decay_type=fixed \
  --save_interval_secs=60 \
  --save_summaries_secs=60 \
  --log_every_n_steps=100 \
  --optimizer=rmsprop \
  --weight_decay=0.00004 \
  ${IMAGE_SIZE:+--train_image_size=${IMAGE_SIZE}}

# Run evaluation.
"${PYTHON}" "${SLIM_DIR}/eval_image_classifier.py" \
  --checkpoint_path="${TRAIN_DIR}" \
  --eval_dir="${TRAIN_DIR}" \
  --dataset_name=flowers \
  --dataset_split_name=validation \
  --dataset_dir="${DATASET_DIR}" \
  --model_name=inception_v3

# Fine-tune all the layers, from the first stage's train dir.
"${PYTHON}" "${SLIM_DIR}/train_image_classifier.py" \
  --train_dir="${TRAIN_DIR}/all" \
  --dataset_name=flowers \
  --dataset_split_name=train \
  --dataset_dir="${DATASET_DIR}" \
  --model_name=inception_v3 \
  --checkpoint_path="${TRAIN_DIR}" \
  --max_number_of_steps="${MAX_STEPS_ALL}" \
  --batch_size="${BATCH_SIZE}" \
  --learning_rate=0.0001 \
  --learning_rate_decay_type=fixed \
  --save_interval_secs=60 \
  --save_summaries_secs=60 \
  --log_every_n_steps=10 \
  --optimizer=rmsprop \
  --weight_decay=0.00004 \
  ${IMAGE_SIZE:+--train_image_size=${IMAGE_SIZE}}

# Run evaluation.
"${PYTHON}" "${SLIM_DIR}/eval_image_classifier.py" \
  --checkpoint_path="${TRAIN_DIR}/all" \
  --eval_dir="${TRAIN_DIR}/all" \
  --dataset_name=flowers \
  --dataset_split_name=validation \
  --dataset_dir="${DATASET_DIR}" \
  --model_name=inception_v3
