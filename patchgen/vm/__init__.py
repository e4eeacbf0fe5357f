"""`patchgen verify`: build the kernel, boot it, read the guest's verdict; LAVA and the matrix."""
