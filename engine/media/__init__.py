"""Pixels in and out: reference clips read and sampled (streamed, cropped or padded), images and animations written."""
